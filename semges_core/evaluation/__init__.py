"""Judging motion: the paper's metrics and stick-figure previews."""
