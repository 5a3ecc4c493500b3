"""Command line: draft and check dataset specs, trace and rebuild model versions.

    python -m retrainer spec draft FILE... --time COL --target COL --name NAME
                                                                draft a spec from sample deliveries
    python -m retrainer spec check [NAME|FILE...] [--against FILE...]
                                                                check specs (and what ingest would do with files)
    python -m retrainer lineage model <model> <version>        where a model version came from
    python -m retrainer lineage data <dataset> <data_version>  the model versions built on a data version
    python -m retrainer reproduce <model> <version>            rebuild a version and compare it
    python -m retrainer reviewers add <user> <model>...         let an MLflow user approve versions
    python -m retrainer reviewers remove <user> <model>...      take that away again

Locations come from the environment, as for the pipeline (``Settings.from_env``); the
embedded default's environment is printed by ``python -m retrainer_dev.localenv``.

Exit status: 0 done (reproduce: reproduced within the tolerance; spec check: every spec loads
and every file would be versioned); 1 not reproduced, or the version cannot be rebuilt as
recorded, or a spec error or a file ingest would quarantine; 2 unknown model, version, dataset,
data version or file, or bad arguments.
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

    parser = argparse.ArgumentParser(
        prog="python -m retrainer", description="Draft and check dataset specs; trace and rebuild model versions."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    _spec_parser(sub)

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


def _spec_parser(sub: Any) -> None:
    spec = sub.add_parser(
        "spec", help="draft a dataset spec from sample files, or check specs before the stack uses them"
    )
    act = spec.add_subparsers(dest="action", required=True)
    draft = act.add_parser("draft", help="draft a commented spec from sample deliveries (CSV or Parquet)")
    draft.add_argument("files", nargs="+", help="sample deliveries of the dataset, e.g. landing/taxi/2024-0*.csv")
    draft.add_argument("--time", required=True, help="the column every row's time is in")
    draft.add_argument("--target", required=True, help="the column to predict")
    draft.add_argument("--name", required=True, help="the dataset's name (its spec file, landing folder and runs)")
    draft.add_argument("--task", choices=("regression", "classification", "multiclass"), help="default: guessed")
    draft.add_argument(
        "--frequency", choices=("hourly", "daily", "weekly", "monthly"), help="the period a batch covers (guessed)"
    )
    draft.add_argument("-o", "--output", help="where to write the draft (default: <specs folder>/<name>.yaml)")
    draft.add_argument("--force", action="store_true", help="replace a spec file that exists already")
    check = act.add_parser("check", help="load specs, report every error, and what ingest would do with files")
    check.add_argument("specs", nargs="*", help="spec names or files (default: every spec of the specs folder)")
    check.add_argument(
        "--against",
        nargs="+",
        metavar="FILE",
        help="sample deliveries to run the ingest validation on, in delivery order (nothing is versioned)",
    )


def _spec(args: argparse.Namespace) -> int:
    from retrainer.data.batchfile import DataFileError

    if not args.verbose:  # the report says what each file would meet; the logs would say it twice
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda record: not record.name.startswith(("retrainer", "great_expectations")))
    try:
        return _draft(args) if args.action == "draft" else _check(args)
    except DataFileError as exc:
        print(f"retrainer: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND


def _draft(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retrainer.data.drafting import draft_spec
    from retrainer.settings import specs_dir

    out = Path(args.output) if args.output else specs_dir() / f"{args.name}.yaml"
    if out.exists() and not args.force:
        print(f"retrainer: {out} exists: give another -o, or --force to replace it", file=sys.stderr)
        return EXIT_NOT_FOUND
    draft = draft_spec(args.files, args.time, args.target, args.name, args.task, args.frequency)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(draft.text)
    print(f"drafted {out}:\n\n{draft.text}")
    for note in draft.notes:
        print(f"look at: {note}")
    print(f"checking the draft against the {len(args.files)} sample file(s):")
    return _report(out, args.files)


def _check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retrainer.settings import specs_dir

    folder = specs_dir()
    named = [Path(s) if s.endswith((".yaml", ".yml")) or "/" in s else folder / f"{s}.yaml" for s in args.specs]
    paths = named or sorted(folder.glob("*.yaml"))
    if not paths:
        print(f"retrainer: no spec files in {folder}", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.against and len(paths) != 1:
        print("retrainer: --against checks files with one spec: name it", file=sys.stderr)
        return EXIT_NOT_FOUND
    status = EXIT_OK
    for path in paths:
        status = max(status, _report(path, args.against or []))
    return status


def _report(path: Any, files: list[str]) -> int:
    """Print a spec's errors, or what ingest would do with ``files``; the exit status."""
    from retrainer.data.speccheck import check_files
    from retrainer.spec.dataset import DatasetSpec, spec_errors

    errors = spec_errors(path)
    if errors:
        print(f"{path}: {len(errors)} error(s)")
        for exc in errors:
            print(f"  - field '{exc.field}': {exc.problem}")
        return EXIT_FAILED
    spec = DatasetSpec.load(path)
    task = spec.target.task
    print(
        f"{path}: loads ({spec.name}: {spec.frequency} batches, {task} of '{spec.target.column}',"
        f" {len(spec.features)} features, model {spec.model_name})"
    )
    if not files:
        return EXIT_OK
    verdicts = check_files(spec, files)
    for verdict in verdicts:
        print("  " + verdict.render().replace("\n", "\n  "))
    refused = sum(not v.accepted for v in verdicts)
    print(f"{len(verdicts)} batch(es): {len(verdicts) - refused} would be versioned, {refused} quarantined")
    return EXIT_FAILED if refused else EXIT_OK


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

    if args.command == "spec":
        return _spec(args)

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
