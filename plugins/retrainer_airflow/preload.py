"""What retrainer's tasks import, imported once per worker instead of once per task.

Airflow runs every task in a fresh process forked from a long-lived worker process (the Task
SDK's supervisor forks it). What the worker imported before is in the task process at no
cost; what it did not, each task imports again: TensorFlow and Keras (about 5 s), MLflow,
Great Expectations, DVC, pandas, and Airflow's own task runner. **Importing this module
imports them**, so a worker that imports it before it runs tasks hands them to every task
it forks.

TensorFlow is imported here and never run: no op, no tensor, no device is touched, so its
runtime starts in each task process on first use (importing TensorFlow before a fork is safe;
running it before a fork is not).

Where it is imported (nowhere else: the scheduler, the API server, the DAG processor and the
triggerer stay as lean as they were):

* LocalExecutor (the embedded default, ``retrainer_dev.localenv``): ``[scheduler]
  mp_start_method = forkserver`` and ``[scheduler] mp_forkserver_preload =
  retrainer_airflow.preload``. The executor's worker processes are forked from a server
  process that imported this module (started with the first task after the scheduler starts,
  which waits for it once).
* CeleryExecutor (``docker-compose.yaml``, the Celery test stacks): ``[celery]
  celery_config_options = retrainer_airflow.celery_config.CELERY_CONFIG``. The worker imports
  this module as it starts, before it forks its pool processes.

A module that does not import is logged and left out: a task that needs it imports it (and
fails) as it would have without the preload.
"""

from __future__ import annotations

from retrainer_airflow.worker_imports import MODULES, preload

__all__ = ["MODULES", "PRELOADED"]

#: seconds each module took to import here
PRELOADED = preload()
