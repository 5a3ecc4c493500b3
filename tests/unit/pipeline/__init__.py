"""Unit tests of ``retrainer.pipeline``."""
