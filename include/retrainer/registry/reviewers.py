"""Reviewers on an MLflow server with logins (``mlflow server --app-name retrainer-auth``).

A reviewer is an MLflow user with EDIT on the registered models they review: that lets them
set a version's ``approval`` tag and nothing else in the registry (``retrainer.registry.mlflow_app``).
Everyone else who logs in reads. Run as the pipeline's service account (the MLflow admin:
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``) against ``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

from collections.abc import Iterable

REGISTERED_MODEL = "registered_model"
EDIT = "EDIT"


def _client(tracking_uri: str):  # type: ignore[no-untyped-def]
    from mlflow.server.auth.client import AuthServiceClient

    return AuthServiceClient(tracking_uri)


def add(tracking_uri: str, username: str, password: str | None, models: Iterable[str]) -> list[str]:
    """Create ``username`` (when ``password`` is given and the user is new) and let them review
    ``models``. Returns what was done, in words. Running it again changes nothing."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    done = []
    try:
        client.get_user(username)
    except MlflowException:
        if not password:
            raise ValueError(f"{username} is not an MLflow user yet: give a password to create them") from None
        client.create_user(username, password)
        done.append(f"created the MLflow user {username}")
    for model in models:
        if _permission(client, username, model) == EDIT:
            continue
        try:
            client.grant_user_permission(username, REGISTERED_MODEL, model, EDIT)
        except MlflowException:  # another permission was granted before: replace it
            client.revoke_user_permission(username, REGISTERED_MODEL, model)
            client.grant_user_permission(username, REGISTERED_MODEL, model, EDIT)
        done.append(f"{username} may approve or reject versions of {model}")
    return done


def remove(tracking_uri: str, username: str, models: Iterable[str]) -> list[str]:
    """Take review of ``models`` away from ``username`` (they keep reading)."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    done = []
    for model in models:
        try:
            client.revoke_user_permission(username, REGISTERED_MODEL, model)
        except MlflowException:  # nothing was granted
            continue
        done.append(f"{username} no longer reviews {model}")
    return done


def _permission(client, username: str, model: str) -> str | None:  # type: ignore[no-untyped-def]
    from mlflow.exceptions import MlflowException

    try:
        result = client.get_user_permission(username, REGISTERED_MODEL, model)
    except MlflowException:
        return None
    return str(result.permission)
