"""Airflow adapters for retrainer: thin glue between Airflow tasks and ``include/retrainer``.

Nothing heavy is imported at module level: DAG files import from here at parse time.
"""
