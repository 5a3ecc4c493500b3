"""Unit tests of ``retrainer.registry``."""
