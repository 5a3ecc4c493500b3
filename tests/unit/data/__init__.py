"""Unit tests of ``retrainer.data``."""
