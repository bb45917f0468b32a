"""``python -m airflow_k8s.executor``: the scheduler process and its operator commands.

    run          the scheduler: reads the intake spool, launches pods, watches, cleans up
    render-pod   print the pod YAML a task would get (offline: no cluster needed)
    validate     load airflow.cfg and every pod template, report every problem
    submit       put a task JSON into the intake spool
    pods         list the platform's pods and counts by phase
    cleanup      delete finished pods older than N hours (0: every finished pod)
    cost         cost (C = sum c_i t_i) and utilization report per task, DAG or tier
    groom-logs   keep a logs directory within an age and a size (the control plane's log-groomer)

``pods``, ``cleanup`` and ``cost`` see every pod of this platform's executors in the namespace -
the pods an executor inside Airflow runs (labelled with its scheduler job id) and the standalone
runner's alike: ``kubernetes_executor=True`` (the provider's label) and this project's
``airflow_executor_tier``, so the provider's own KubernetesExecutor pods are not touched.
``--scheduler-job ID`` narrows them to one scheduler job (``default``: the standalone runner).

Exit codes: 0 success, 2 bad input (config, task, template), 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_loader import load_config
from airflow_k8s.executor.contract.errors import ConfigErrors, ExecutorError, KubeApiError
from airflow_k8s.executor.contract.parsers import float_parser, int_parser
from airflow_k8s.executor.engine import logs
from airflow_k8s.executor.kube.client import KubeClient
from airflow_k8s.executor.pods import preflight
from airflow_k8s.executor.pods.podfactory import build_pod
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.executor.tasks import identity, taskfile
from airflow_k8s.executor.tasks.task import Task

log = logging.getLogger("airflow_k8s.executor")
BAD_INPUT = 2
MAX_AGE_HOURS = 8760.0  # a year, the config key's bound
# Every pod of this platform's executors: the provider's executor label and this project's own tier label.
PLATFORM_SELECTOR = f"{identity.LABEL_EXECUTOR}=True,{identity.LABEL_TIER}"


def _read_task(value: str) -> Task:
    """``--task``: inline JSON, a file path, or ``-`` for stdin (the intake's size and depth limits)."""
    if value == "-":
        return taskfile.parse_task_json(sys.stdin.read(taskfile.MAX_TASK_BYTES + 1), source="<stdin>")
    if value.lstrip().startswith("{"):
        return taskfile.parse_task_json(value, source="--task")
    return taskfile.read_task_file(value)


def _bounded(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a config parser: the same bounds as airflow.cfg, argparse's message."""

    def checked(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{raw!r}: {exc}") from exc

    return checked


def _hours(raw: str) -> float:
    """``--max-age-hours``: a finite number of hours from 0 (every finished pod) to a year."""
    text = raw.strip()
    value = float(text) if re.fullmatch(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", text, flags=re.ASCII) else float("nan")
    if not 0 <= value <= MAX_AGE_HOURS:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected a number of hours from 0 to {MAX_AGE_HOURS:g}")
    return value


def _selector(args: argparse.Namespace) -> str:
    """The platform's pods, or one scheduler job's (``--scheduler-job``)."""
    job = getattr(args, "scheduler_job", None)
    return (
        f"{PLATFORM_SELECTOR},{identity.LABEL_INSTANCE}={identity.safe_label_value(job)}" if job else PLATFORM_SELECTOR
    )


def _templates(args: argparse.Namespace, config: ExecutorConfig) -> TemplateStore:
    return TemplateStore(args.templates or config.pod_template_dir, logical_dir=config.pod_template_dir)


def _kube(args: argparse.Namespace, config: ExecutorConfig) -> KubeClient:
    pool = config.creation_workers() + 8
    timeout, cap = config.request_timeout(), config.kube_max_response_mib << 20
    if getattr(args, "api_url", None):
        return KubeClient.for_host(args.api_url, pool_size=pool, request_timeout=timeout, max_response_bytes=cap)
    if getattr(args, "kubeconfig", None) or getattr(args, "context", None):
        return KubeClient.from_settings(
            in_cluster=False,
            config_file=args.kubeconfig,
            context=args.context,
            pool_size=pool,
            request_timeout=timeout,
            max_response_bytes=cap,
        )
    return KubeClient.from_config(config, pool_size=pool)


# -- commands ----------------------------------------------------------------------------------------
def cmd_render_pod(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    pod = build_pod(_read_task(args.task), config, _templates(args, config), tier_name=args.tier, validate_schema=True)
    sys.stdout.write(yaml.safe_dump(pod, sort_keys=False))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Every problem of the config file and of the templates it relies on, at once (exit 2 if any)."""
    try:
        config = load_config(args.config)
    except ConfigErrors as exc:
        problems = [str(problem) for problem in exc.problems]
    except ExecutorError as exc:
        problems = [str(exc)]
    else:
        try:
            store = _templates(args, config)
        except ExecutorError as exc:
            problems = [str(exc)]
        else:
            problems = preflight.template_problems(config, store)
    if problems:
        print(f"{args.config}: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print("  - " + problem.replace("\n", "\n    "), file=sys.stderr)
        return BAD_INPUT
    templates = store.names()
    print(f"ok: {args.config}: namespace {config.namespace}, {len(templates)} templates, {len(config.tiers)} tiers")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from airflow_k8s.executor.tasks.spool import Spool

    config = load_config(args.config)
    task = _read_task(args.task)
    # The pod the scheduler would build, judged now: a task the pod policy refuses is never spooled.
    build_pod(task, config, _templates(args, config), tier_name=args.tier)
    path = Spool(args.spool or config.task_intake_dir).submit(task)
    print(path)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from airflow_k8s.executor.engine.core import Engine
    from airflow_k8s.executor.engine.server import StatusServer
    from airflow_k8s.executor.tasks.spool import Spool

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    config = load_config(args.config)
    templates = _templates(args, config)
    templates.load_all()  # fail fast on a broken template ConfigMap
    spool = Spool(args.spool or config.task_intake_dir)
    kube = _kube(args, config)
    engine = Engine(config, templates, kube, sink=spool, intake=spool.scan)
    status = StatusServer(
        engine.metrics.registry,
        healthy=engine.healthy,
        ready=engine.ready,
        port=args.port if args.port is not None else config.metrics_port,
    )
    status.start()
    engine.start()
    log.info(
        "scheduler started",
        extra={
            "event": "started",
            "namespace": config.namespace,
            "metrics_port": status.port,
            "n_max": config.worker_pods_max,
        },
    )
    stop.wait()
    log.info("stopping", extra={"event": "stopping"})
    engine.stop()
    status.stop()
    kube.close()
    return 0


def cmd_pods(args: argparse.Namespace) -> int:
    from airflow_k8s.executor.reports.monitor import PodMonitor

    config = load_config(args.config)
    monitor = PodMonitor(_kube(args, config), config.namespace, label_selector=_selector(args))
    pods = monitor.list_worker_pods()
    for pod in pods:
        summary = monitor.summarize(pod)
        started = summary.start_time.isoformat() if summary.start_time else "-"
        print(
            f"{summary.name:63}  {summary.phase:9}  {summary.tier or '-':8}  {summary.node_name or '-':20}  {started}"
        )
    print(json.dumps(monitor.get_pod_metrics(), sort_keys=True))
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    from airflow_k8s.executor.reports.monitor import PodMonitor

    config = load_config(args.config)
    monitor = PodMonitor(_kube(args, config), config.namespace, label_selector=_selector(args))
    hours = args.max_age_hours if args.max_age_hours is not None else config.finished_pod_max_age_hours
    report = monitor.cleanup_old_pods(hours, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(report.deleted)} pod(s); {len(report.errors)} error(s)")
    for name, error in sorted(report.errors.items()):
        print(f"  {name}: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_cost(args: argparse.Namespace) -> int:
    from airflow_k8s.executor.reports import cost
    from airflow_k8s.executor.tasks.spool import Spool

    config = load_config(args.config)
    results = Spool(args.spool or config.task_intake_dir).read_results()
    kube = None if args.no_live else _kube(args, config)
    report = cost.gather_report(config, results, kube, label_selector=_selector(args))
    print(cost.render_table(report, by=args.by))
    if args.png:
        cost.plot(report, args.png, by=args.by)
        print(f"plot written to {args.png}")
    return 0


def cmd_groom_logs(args: argparse.Namespace) -> int:
    from pathlib import Path

    from airflow_k8s.executor.reports import logfiles

    root = Path(args.dir)
    if not root.is_dir():
        print(f"error: --dir {args.dir}: not a directory", file=sys.stderr)
        return BAD_INPUT
    if args.alive_within_minutes is not None:  # the sidecar's probe
        return 0 if logfiles.alive(root, args.alive_within_minutes * 60) else 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    every = 0.0 if args.once else args.every_minutes * 60
    if args.once:
        stop.set()
    logfiles.run(
        root, max_age_seconds=args.max_age_days * 86400, max_bytes=args.max_bytes, every_seconds=every, stop=stop
    )
    return 0


# -- parser --------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_k8s.executor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
    parser.add_argument("--plain-logs", action="store_true", help="human-readable logs instead of JSON lines")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, handler: Any, help_text: str, *, cluster: bool = False, selects: bool = False
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        p.add_argument("--config", required=True, help="path of airflow.cfg")
        p.add_argument("--templates", help="pod template directory (default: the config's pod_template_dir)")
        if cluster:
            group = p.add_argument_group("cluster connection (default: the config's in_cluster/config_file)")
            group.add_argument("--kubeconfig", help="kubeconfig file")
            group.add_argument("--context", help="kubeconfig context")
            group.add_argument("--api-url", help="plain HTTP API URL, e.g. from kubectl proxy")
        if selects:
            p.add_argument(
                "--scheduler-job",
                metavar="ID",
                help="only the pods of this scheduler job (its airflow-worker label; the standalone runner's is "
                "'default'); default: every pod of this platform's executors in the namespace",
            )
        return p

    p = command("render-pod", cmd_render_pod, "print the pod YAML a task would get")
    p.add_argument("--task", required=True, help="task JSON: inline, a file, or - for stdin")
    p.add_argument("--tier", help="tier to assume for tier: auto tasks (default: the config's default_tier)")
    command("validate", cmd_validate, "check airflow.cfg and every pod template")
    p = command("submit", cmd_submit, "check a task against the pod policy, then put it into the intake spool")
    p.add_argument("--task", required=True, help="task JSON: inline, a file, or - for stdin")
    p.add_argument("--tier", help="tier to assume for tier: auto tasks in the check (default: the default_tier)")
    p.add_argument("--spool", help="intake directory (default: the config's task_intake_dir)")
    p = command("run", cmd_run, "run the scheduler", cluster=True)
    p.add_argument("--spool", help="intake directory (default: the config's task_intake_dir)")
    p.add_argument(
        "--port", type=_bounded(int_parser(0, 65535)), help="metrics/probe port (default: the config's metrics_port)"
    )
    command("pods", cmd_pods, "list the platform's pods", cluster=True, selects=True)
    p = command("cleanup", cmd_cleanup, "delete finished pods older than N hours", cluster=True, selects=True)
    p.add_argument(
        "--max-age-hours",
        type=_hours,
        help="hours, 0 (every finished pod) to 8760 (default: the config's finished_pod_max_age_hours)",
    )
    p.add_argument("--dry-run", action="store_true")
    p = command("cost", cmd_cost, "cost and utilization report", cluster=True, selects=True)
    p.add_argument("--by", default="tier", choices=("task", "dag", "tier"))
    p.add_argument("--png", help="also write a bar chart to this PNG file")
    p.add_argument("--spool", help="intake directory with results/ (default: the config's task_intake_dir)")
    p.add_argument("--no-live", action="store_true", help="only finished tasks; do not ask the cluster")
    p = sub.add_parser(
        "groom-logs", help="keep a logs directory within an age and a size", description=cmd_groom_logs.__doc__
    )
    p.set_defaults(handler=cmd_groom_logs)
    p.add_argument("--dir", required=True, help="the logs directory (only regular files below it are deleted)")
    p.add_argument("--max-age-days", type=_bounded(float_parser(0.0, 36500.0)), default=15.0)
    p.add_argument("--max-bytes", type=_bounded(int_parser(0, 2**62)), default=2**62, help="disk use to stay under")
    p.add_argument("--every-minutes", type=_bounded(float_parser(0.1, 1440.0)), default=15.0)
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument(
        "--alive-within-minutes",
        type=_bounded(float_parser(0.0, 100000.0)),
        help="probe: exit 0 if a pass finished within this many minutes, else 1 (grooms nothing)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_level, json_format=not args.plain_logs)
    try:
        return int(args.handler(args))
    except KubeApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ExecutorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
