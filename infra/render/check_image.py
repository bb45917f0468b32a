"""``python -m airflow_k8s.infra check-image PATH --role worker|scheduler [--stack NAME]``.

Runs the image preflight's checks offline against a local image (an unpacked root filesystem, an
``umoci unpack`` bundle, an OCI image layout or a ``docker save`` archive; see
:mod:`airflow_k8s.executor.imagecheck.layout`), with what the stack expects: ``runAsUser``,
``runAsGroup`` and ``airflowVersion`` from ``Pulumi.<stack>.yaml`` (``--stack``) or their
defaults, overridable with ``--uid``/``--gid``/``--airflow-version``.  Prints one line per check
(``ok``, ``FAIL``, ``skip`` for what only running the image shows), then one line naming the image
and every problem; exit status 1 when a check failed, 2 when the image cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from airflow_k8s.executor.imagecheck import offline
from airflow_k8s.executor.imagecheck.layout import ImageLayoutError, open_image
from airflow_k8s.infra.components.airflowcfg import AIRFLOW_HOME
from airflow_k8s.infra.components.airflowpod import AIRFLOW_CFG_PATH
from airflow_k8s.infra.components.imagecheck import package_version
from airflow_k8s.infra.config.stack_config import parse_stack_config
from airflow_k8s.infra.config.stack_keys import KEYS_BY_NAME, SECRET_KEYS


def add_parser(commands: Any, project_dir: Path) -> None:
    cmd = commands.add_parser("check-image", help="check a local image (rootfs, OCI layout, docker-archive) offline")
    cmd.add_argument(
        "image", type=Path, help="root filesystem dir, umoci bundle, OCI layout (dir or tar), docker-archive tar"
    )
    cmd.add_argument("--role", choices=("worker", "scheduler"), required=True, help="workerImage or airflowImage")
    cmd.add_argument("--stack", help="read runAsUser/runAsGroup/airflowVersion from Pulumi.<stack>.yaml")
    cmd.add_argument("--uid", type=int)
    cmd.add_argument("--gid", type=int)
    cmd.add_argument("--airflow-version")
    cmd.add_argument("--project-dir", type=Path, default=project_dir, help=argparse.SUPPRESS)


def _stack_values(stack: str | None, project_dir: Path) -> dict[str, Any]:
    defaults = {name: KEYS_BY_NAME[name].default for name in ("runAsUser", "runAsGroup", "airflowVersion")}
    if stack is None:
        return defaults
    from airflow_k8s.infra.render.main import load_stack_inputs

    inputs = load_stack_inputs(stack, project_dir)
    prefix = f"{inputs.project}:"
    raw = {
        key.removeprefix(prefix): value
        for key, value in inputs.config.items()
        if key.startswith(prefix) and key.removeprefix(prefix) not in SECRET_KEYS
    }
    config = parse_stack_config(raw, secrets_set={"databaseUrl"}).platform
    return {
        "runAsUser": config.identity.run_as_user,
        "runAsGroup": config.identity.run_as_group,
        "airflowVersion": config.image_preflight.airflow_version,
    }


def run(args: argparse.Namespace) -> int:
    values = _stack_values(args.stack, args.project_dir)
    want = offline.Expectations(
        role=args.role,
        uid=values["runAsUser"] if args.uid is None else args.uid,
        gid=values["runAsGroup"] if args.gid is None else args.gid,
        airflow_home=AIRFLOW_HOME,
        airflow_config=AIRFLOW_CFG_PATH,
        airflow_version=values["airflowVersion"] if args.airflow_version is None else args.airflow_version,
        executor_version=package_version(),
    )
    try:
        image = open_image(args.image)
    except (ImageLayoutError, OSError, KeyError, ValueError) as exc:
        print(f"check-image: cannot read {args.image}: {exc}", file=sys.stderr)
        return 2
    report = offline.check(image, want)
    for status, check, message in report.lines:
        print(f"{status:<5} {check}: {message}")
    print(offline.summary(image, want, report))
    return 1 if report.problems else 0
