"""What the retrainer tasks do inside Airflow, one module per stage (mirroring
``retrainer.pipeline``): read the run's context, read the upstream records from XCom,
call the library, and turn outcomes into Airflow states (a quarantined batch fails its run;
a model that is not promoted skips deployment). Records go back to XCom as strict JSON.

Imports of ``retrainer.pipeline`` (and through it pandas, GX, MLflow, TensorFlow) happen
inside the functions, so DAG files that import these modules stay fast to parse.
"""

from retrainer_airflow.tasks import deploy, evaluate, ingest, landing, monitor, release, rollback, runtime, train

__all__ = ["deploy", "evaluate", "ingest", "landing", "monitor", "release", "rollback", "runtime", "train"]
