"""Panther-format rules: loading, data models, the event wrapper, evaluation and tests."""
