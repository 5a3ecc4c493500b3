"""Stacks of real components on one machine, for the tests and the benchmarks.

- ``airflow``: the Airflow components (API server, scheduler, DAG processor, triggerer) over a
  fresh home and metadata database; ``airflow_api``: a typed client of their REST API;
- ``celery``: the same with the CeleryExecutor, two workers on homes of their own, Redis, an
  MLflow server and S3;
- ``mlflow``: MLflow tracking servers (a stack's component, or a server that can be stopped and
  started again); ``s3``: ``moto_server`` and buckets on it; ``postgres``: fresh databases;
- ``components``, ``ports``, ``specs``, ``hostname``: what they share (a component, the
  inherited environment, free ports, the small training spec, the workers' host names).

Nothing here depends on pytest: a stack that cannot run on this machine raises
``components.StackUnavailable``, and the tests' fixtures (tests/integration/conftest.py) turn
that into a skip or, where it must run, a failure.
"""
