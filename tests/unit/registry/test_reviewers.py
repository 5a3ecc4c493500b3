"""Who may approve on an MLflow server with logins: ``add`` makes the user if new and gives them
EDIT on each model, ``remove`` takes it away; running either again changes nothing.

These calls go to MLflow's auth API over HTTP. Against the real server (MLflow's basic-auth app
with the reviewers' rules, started as docker-compose.yaml starts it) they run in
tests/integration/test_mlflow_server.py; here a stand-in keeps users and permissions as that
API does (an unknown user, a permission granted twice and a revoke of nothing are errors), so
what the module decides from its answers is tested on its own."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

from retrainer.registry import reviewers


class AuthAPI:
    """Users and registered-model permissions, with the auth API's errors."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = dict(users or {})
        self.permissions: dict[tuple[str, str], str] = {}

    def get_user(self, username: str) -> str:
        if username not in self.users:
            raise MlflowException(f"User with username={username} not found")
        return username

    def create_user(self, username: str, password: str) -> None:
        self.users[username] = password

    def get_user_permission(self, username: str, resource_type: str, resource_id: str) -> object:
        assert resource_type == "registered_model"
        if (username, resource_id) not in self.permissions:
            raise MlflowException("Registered model permission not found")
        return type("Permission", (), {"permission": self.permissions[(username, resource_id)]})()

    def grant_user_permission(self, username: str, resource_type: str, resource_id: str, permission: str) -> None:
        self.get_user(username)
        if (username, resource_id) in self.permissions:
            raise MlflowException("Registered model permission already exists")
        self.permissions[(username, resource_id)] = permission

    def revoke_user_permission(self, username: str, resource_type: str, resource_id: str) -> None:
        if self.permissions.pop((username, resource_id), None) is None:
            raise MlflowException("Registered model permission not found")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> AuthAPI:
    stand_in = AuthAPI({"admin": "secret"})
    monkeypatch.setattr(reviewers, "_client", lambda uri: stand_in)
    return stand_in


def test_a_new_reviewer_is_created_and_given_edit_once(api: AuthAPI) -> None:
    done = reviewers.add("http://mlflow:5000", "rita", "pw", ["bike_demand", "flights"])
    assert done == [
        "created the MLflow user rita",
        "rita may approve or reject versions of bike_demand",
        "rita may approve or reject versions of flights",
    ]
    assert api.users["rita"] == "pw"
    assert api.permissions == {("rita", "bike_demand"): "EDIT", ("rita", "flights"): "EDIT"}
    assert reviewers.add("http://mlflow:5000", "rita", None, ["bike_demand"]) == []  # again: nothing to change


def test_a_user_who_is_not_there_needs_a_password(api: AuthAPI) -> None:
    with pytest.raises(ValueError, match="rita is not an MLflow user yet: give a password to create them"):
        reviewers.add("http://mlflow:5000", "rita", None, ["bike_demand"])
    assert "rita" not in api.users and api.permissions == {}


def test_a_reader_becomes_a_reviewer_in_place_of_their_other_permission(api: AuthAPI) -> None:
    api.create_user("rita", "pw")
    api.permissions[("rita", "bike_demand")] = "READ"
    assert reviewers.add("http://mlflow:5000", "rita", None, ["bike_demand"]) == [
        "rita may approve or reject versions of bike_demand"
    ]
    assert api.permissions == {("rita", "bike_demand"): "EDIT"}


def test_removing_takes_review_away_where_it_was_given(api: AuthAPI) -> None:
    reviewers.add("http://mlflow:5000", "rita", "pw", ["bike_demand"])
    assert reviewers.remove("http://mlflow:5000", "rita", ["bike_demand", "flights"]) == [
        "rita no longer reviews bike_demand"
    ]
    assert api.permissions == {} and "rita" in api.users  # they keep their login, and read
    assert reviewers.remove("http://mlflow:5000", "rita", ["bike_demand"]) == []
