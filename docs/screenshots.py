"""Take the README's screenshots of the running web UIs (after `make demo` and `make up`).

Needs the `playwright` Python package and a Chromium (e.g. Debian's `chromium`); it
never downloads a browser. Usage, with the password that `make up` prints:
    python docs/screenshots.py --password PASSWORD
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).parent / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip


def airflow_token(base: str, password: str) -> str:
    req = urllib.request.Request(
        f"{base}/auth/token",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        return str(json.load(resp)["access_token"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--password", required=True)
    p.add_argument("--airflow", default="http://127.0.0.1:8080")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--drift-report", type=Path, default=None, help="a drift_report.html to capture")
    a = p.parse_args()
    OUT.mkdir(exist_ok=True)
    token = airflow_token(a.airflow, a.password)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=a.chromium, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        ctx.add_cookies([{"name": "_token", "value": token, "url": a.airflow}])
        page = ctx.new_page()
        page.goto(f"{a.airflow}/dags/retrain_model")
        page.wait_for_timeout(6000)
        page.screenshot(path=str(OUT / "airflow-retrain-grid.png"))
        page.goto(f"{a.airflow}/dags/ingest_batch")
        page.wait_for_timeout(6000)
        page.screenshot(path=str(OUT / "airflow-ingest-grid.png"))
        page.goto(f"{a.airflow}/dags/monitor_drift")
        page.wait_for_timeout(6000)
        page.screenshot(path=str(OUT / "airflow-monitor-grid.png"))
        if a.drift_report:  # an HTML drift report from MLflow's artifacts, as a reviewer sees it
            page.set_viewport_size({"width": 1300, "height": 1500})
            page.goto(a.drift_report.resolve().as_uri())
            page.wait_for_timeout(1000)
            page.screenshot(path=str(OUT / "drift-report.png"))
        browser.close()


if __name__ == "__main__":
    main()
