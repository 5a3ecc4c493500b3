"""The MLflow server app's registry rules: besides the service account, a logged-in user may
write one thing, the ``approval`` tag of a model version, and the server records them as its
reviewer first.

The rules and the reading of a request are tested here, in a Flask request of their own and
against a real SQLite registry store; the app inside a running MLflow server with logins
(basic auth, users, permissions) is tested in tests/integration/test_mlflow_server.py."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, g

from retrainer import schema
from retrainer.registry import mlflow_app
from retrainer.registry.client import Registry
from retrainer.settings import Settings

APP = Flask("rules")


@pytest.mark.parametrize(
    ("path", "registry"),
    [
        ("/api/2.0/mlflow/model-versions/set-tag", "model-versions/set-tag"),
        ("/ajax-api/2.0/mlflow/registered-models/alias", "registered-models/alias"),
        ("/api/2.0/mlflow/registered-models/delete", "registered-models/delete"),
        ("/api/2.0/mlflow/runs/create", None),
        ("/api/2.0/mlflow/model-versions", None),
        ("/static-files/model-versions/set-tag", None),
    ],
)
def test_the_rules_apply_to_the_model_registry_only(path: str, registry: str | None) -> None:
    match = mlflow_app._REGISTRY.match(path)
    assert (match["path"] if match else None) == registry


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        (
            "registered-models/alias",
            {"name": "m", "alias": "champion", "version": "3"},
            "may write only the 'approval'",
        ),
        ("model-versions/set-tag", {"key": "approval.reviewer", "value": "bob"}, "approval.reviewer is for the"),
        ("model-versions/set-tag", {"key": "gate.passed", "value": "true"}, "set-tag gate.passed is for the pipeline"),
        ("model-versions/delete", {"name": "m", "version": "3"}, "POST model-versions/delete"),
        ("registered-models/create", {"name": "m2"}, "may write only the 'approval' tag of a model version"),
        (
            "model-versions/set-tag",
            {"key": "approval", "value": "maybe"},
            "must be 'approved' or 'rejected', not 'maybe'",
        ),
        ("model-versions/set-tag", {"key": "approval"}, "must be 'approved' or 'rejected', not None"),
    ],
)
def test_a_reviewer_may_write_nothing_but_a_decision(path: str, params: dict[str, Any], says: str) -> None:
    verdict = mlflow_app._reviewer_write(path, "POST", params, "rita")
    assert verdict is not None and says in verdict
    if params.get("key") != schema.APPROVAL:
        assert verdict.startswith("rita may write only the 'approval' tag of a model version in the registry; ")
        assert verdict.endswith("is for the pipeline's service account")


def test_a_reviewer_may_take_an_answer_back() -> None:
    assert mlflow_app._reviewer_write("model-versions/delete-tag", "DELETE", {"key": "approval"}, "rita") is None


@pytest.fixture
def registry_store(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The server's registry store (what ``_record_reviewer`` writes through): the settings' SQLite
    store, with bike_demand v1 in it."""
    from mlflow.server import handlers
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    monkeypatch.setattr(handlers, "_model_registry_store", SqlAlchemyStore(settings.mlflow_tracking_uri))
    registry = Registry(settings)
    registry.client.create_registered_model("bike_demand")
    registry.client.create_model_version("bike_demand", "retrainer://test/model")
    return registry


def test_an_answer_is_let_through_once_its_reviewer_is_recorded(registry_store: Registry) -> None:
    params = {"name": "bike_demand", "version": "1", "key": "approval", "value": " Approved "}
    assert mlflow_app._reviewer_write("model-versions/set-tag", "POST", params, "rita") is None
    tags = registry_store.client.get_model_version("bike_demand", "1").tags
    assert tags == {schema.APPROVAL_REVIEWER: "rita"}  # the answer itself is MLflow's to store next


def test_an_answer_for_a_version_that_does_not_exist_is_refused(registry_store: Registry) -> None:
    params = {"name": "bike_demand", "version": "9", "key": "approval", "value": "rejected"}
    verdict = mlflow_app._reviewer_write("model-versions/set-tag", "POST", params, "rita")
    assert verdict is not None and verdict.startswith("cannot record the reviewer of bike_demand v9: ")


def test_a_request_is_read_from_its_query_and_its_json_body() -> None:
    with APP.test_request_context(
        "/api/2.0/mlflow/model-versions/set-tag?name=m", method="POST", json={"key": "approval", "value": "approved"}
    ):
        from flask import request

        assert mlflow_app._params(request) == {"name": "m", "key": "approval", "value": "approved"}
    with APP.test_request_context("/api/2.0/mlflow/model-versions/get?name=m&version=2", method="GET"):
        from flask import request

        assert mlflow_app._params(request) == {"name": "m", "version": "2"}


def _rules(method: str, path: str, user: str | None, body: dict[str, Any] | None = None) -> Any:
    with APP.test_request_context(path, method=method, json=body):
        if user is not None:
            g.mlflow_authenticated_user = user
        return mlflow_app._registry_rules()


def test_reads_other_apis_and_the_service_account_pass_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mlflow_app, "_is_admin", lambda user: user == "retrainer-pipeline")  # MLflow's user store
    alias = "/api/2.0/mlflow/registered-models/alias"
    assert _rules("GET", "/api/2.0/mlflow/registered-models/get?name=m", "rita") is None
    assert _rules("POST", "/api/2.0/mlflow/registered-models/get-latest-versions", "rita", {"name": "m"}) is None
    assert _rules("POST", "/api/2.0/mlflow/runs/create", "rita", {}) is None
    assert _rules("POST", alias, None, {"name": "m"}) is None  # no login: basic auth answers first
    assert _rules("POST", alias, "retrainer-pipeline", {"name": "m", "alias": "champion"}) is None


def test_anyone_else_writing_the_registry_is_refused_with_403(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mlflow_app, "_is_admin", lambda user: False)
    response = _rules("POST", "/api/2.0/mlflow/registered-models/alias", "rita", {"name": "m", "alias": "champion"})
    assert response.status_code == 403
    body = response.get_json()
    assert body["error_code"] == "PERMISSION_DENIED" and body["message"].startswith("rita may write only")
