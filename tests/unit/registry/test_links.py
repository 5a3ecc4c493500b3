"""Addresses in the MLflow UI, built in one place: runs open in the view for training runs."""

from __future__ import annotations

from retrainer.registry import links


def test_a_run_page_opens_in_the_machine_learning_view() -> None:
    assert (
        links.mlflow_run("http://mlflow:5000/", "3", "abc")
        == "http://mlflow:5000/#/experiments/3/runs/abc?workflowType=machine_learning"
    )


def test_the_artifacts_of_a_run_with_one_selected() -> None:
    ui = "https://mlflow.example.org/mlflow"
    assert links.mlflow_artifacts(ui, "3", "abc") == f"{ui}/#/experiments/3/runs/abc/artifacts{links.ML_VIEW}"
    assert (
        links.mlflow_artifacts(ui + "/", "3", "abc", "evaluation/evaluation_report.html")
        == f"{ui}/#/experiments/3/runs/abc/artifacts/evaluation/evaluation_report.html{links.ML_VIEW}"
    )


def test_a_model_version_page() -> None:
    assert links.mlflow_model_version("http://127.0.0.1:5000/", "bike_demand", "4") == (
        "http://127.0.0.1:5000/#/models/bike_demand/versions/4"
    )
