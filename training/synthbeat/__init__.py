"""SynthBEAT: a procedural dataset written in BEAT's exact file formats.

It exists so the whole pipeline (indexing, caching, both training stages,
inference and metrics) can be exercised on a 2-core machine without BEAT, with
speech from espeak-ng, exact word timings, and gestures whose shape depends on
the meaning of keywords, so that semantic generalisation can be measured.
"""
