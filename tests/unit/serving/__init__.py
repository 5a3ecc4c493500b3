"""Unit tests of ``retrainer.serving``."""
