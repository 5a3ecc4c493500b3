"""Registers retrainer's operator extra links with Airflow (the web UI finds them here)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from retrainer_airflow.sensors import DriftReportLink


class RetrainerPlugin(AirflowPlugin):
    name = "retrainer"
    operator_extra_links = [DriftReportLink()]
