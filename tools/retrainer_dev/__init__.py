"""Developer tooling around retrainer, not loaded by Airflow: the embedded default's
environment (``localenv``), the in-process DAG run driver (``runner``), ``make demo``
(``demo``) and ``make up``/``make down`` (``up``, ``procs``).
"""
