"""Command line: trace and rebuild model versions.

    python -m retrainer lineage model <model> <version>        where a model version came from
    python -m retrainer lineage data <dataset> <data_version>  the model versions built on a data version
    python -m retrainer reproduce <model> <version>            rebuild a version and compare it
    python -m retrainer reviewers add <user> <model>...         let an MLflow user approve versions
    python -m retrainer reviewers remove <user> <model>...      take that away again

Locations come from the environment, as for the pipeline (``Settings.from_env``); the
embedded default's environment is printed by ``python -m retrainer_dev.localenv``.

Exit status: 0 done (reproduce: reproduced within the tolerance); 1 not reproduced, or the
version cannot be rebuilt as recorded; 2 unknown model, version, dataset or data version, or
bad arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_NOT_FOUND = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    from retrainer.registry.reproduce import DEFAULT_TOLERANCE

    parser = argparse.ArgumentParser(prog="python -m retrainer", description="Trace and rebuild model versions.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="rebuild a registered model version from its record and compare")
    rep.add_argument("model", help="registered model name, e.g. bike_demand")
    rep.add_argument("version", help="version number (3 or v3) or alias (champion)")
    rep.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="largest relative difference of the holdout metric that counts as reproduced "
        f"(default {DEFAULT_TOLERANCE:g})",
    )
    rep.add_argument(
        "--code",
        choices=("auto", "here", "commit"),
        default="auto",
        help="auto: this checkout if it is exactly the recorded code, else the recorded commit exported; "
        "here: always this checkout; commit: always the recorded commit exported (default auto)",
    )
    rep.add_argument("--json", action="store_true", help="print the result as JSON")

    lin = sub.add_parser("lineage", help="where a model version came from, or what was built on a data version")
    what = lin.add_subparsers(dest="what", required=True)
    lm = what.add_parser("model", help="lineage of a model version")
    lm.add_argument("model")
    lm.add_argument("version", help="version number (3 or v3) or alias (champion)")
    lm.add_argument("--json", action="store_true", help="print the result as JSON")
    ld = what.add_parser("data", help="model versions trained on a data version")
    ld.add_argument("dataset", help="dataset name, e.g. bike_sharing")
    ld.add_argument("data_version", help="data version, e.g. v0003 (or latest)")
    ld.add_argument("--json", action="store_true", help="print the result as JSON")
    rev = sub.add_parser("reviewers", help="who may approve model versions on an MLflow server with logins")
    act = rev.add_subparsers(dest="action", required=True)
    add = act.add_parser(
        "add",
        help="create the user if new (password from RETRAINER_REVIEWER_PASSWORD) and give them EDIT on the models",
    )
    add.add_argument("user")
    add.add_argument("models", nargs="+", help="registered model names, e.g. bike_demand")
    rm = act.add_parser("remove", help="take review of the models away (the user keeps reading)")
    rm.add_argument("user")
    rm.add_argument("models", nargs="+")
    return parser


def _reviewers(args: argparse.Namespace) -> int:
    from retrainer.registry import reviewers

    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith("http"):
        print(
            "retrainer: reviewers live on an MLflow server: set MLFLOW_TRACKING_URI (and the service "
            "account's MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if args.action == "add":
        done = reviewers.add(uri, args.user, os.environ.get("RETRAINER_REVIEWER_PASSWORD"), args.models)
    else:
        done = reviewers.remove(uri, args.user, args.models)
    print("\n".join(done) or "nothing to change")
    return EXIT_OK


def _print(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.render())


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    if args.verbose:
        logging.getLogger("retrainer").setLevel(logging.INFO)

    from mlflow.exceptions import MlflowException

    from retrainer.data.versioning import DataVersionError
    from retrainer.registry import lineage, reproduce
    from retrainer.settings import Settings

    try:
        if args.command == "reviewers":
            return _reviewers(args)
        settings = Settings.from_env()
        if args.command == "reproduce":
            result = reproduce.reproduce(settings, args.model, args.version, args.tolerance, args.code)
            _print(result, args.json)
            return EXIT_OK if result.within_tolerance else EXIT_FAILED
        if args.what == "model":
            _print(lineage.model_lineage(settings, args.model, args.version), args.json)
        else:
            _print(lineage.data_lineage(settings, args.dataset, args.data_version), args.json)
        return EXIT_OK
    except (lineage.LineageNotFoundError, DataVersionError) as exc:  # unknown model, version, dataset, data
        print(f"retrainer: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (reproduce.ReproductionError, MlflowException, ValueError, RuntimeError) as exc:
        print(f"retrainer: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
