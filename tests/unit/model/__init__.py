"""Unit tests of ``retrainer.model``."""
