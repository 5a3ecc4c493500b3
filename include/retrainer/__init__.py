"""retrainer: the domain library of the retraining pipeline (no Airflow imports here)."""

__version__ = "0.1.0"
