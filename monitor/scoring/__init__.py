"""Scoring: comment texts in, per-dimension scores in [0, 1] out, with the model's version."""
