"""Unit tests of ``retrainer.spec``."""
