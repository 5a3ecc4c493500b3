"""Developer tooling around retrainer, not loaded by Airflow: the embedded default's
environment (``localenv``), the in-process DAG run driver (``runner``), ``make demo``
(``demo``), ``make up``/``make down`` (``up``, ``procs``), stacks of real components for the
tests and the benchmarks (``stacks``) and the one way they wait for something (``waiting``).
"""
