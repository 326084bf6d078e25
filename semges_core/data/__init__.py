"""Datasets for training and evaluation: BEAT's file names and splits, per-frame labels, the cache."""
