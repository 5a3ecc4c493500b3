"""The MLflow side: the registry client and its lock, approval and reviewers, lineage and
reproduction, the MLflow server app and its UI addresses."""
