"""The image check that runs inside the image, as the platform's pods run it.

infra's preflight Job (one per image, :mod:`airflow_k8s.infra.components.imagecheck`) runs this
file with the hardening, mounts and environment of a task pod (worker image) or of the scheduler
(airflow image), as ``python -c <this file's source> --spec <json>``: a worker image normally
lacks this package, so the module is self-contained and uses the standard library only (Airflow
is imported dynamically - it is what is being checked).  Where the package is installed,
``python -m airflow_k8s.executor.imagecheck --spec <json>`` runs the same code.

It checks, in order (each line of output is one check, ``ok``/``FAIL``/``warn``):

* **user**: the process runs as the configured uid/gid, and the uid has a passwd entry (Airflow
  refuses to start without a user name: ``getpwuid(): uid not found``);
* **airflow-home**: the image does not declare another ``AIRFLOW_HOME``/``AIRFLOW_CONFIG`` than
  the platform's (the Job leaves those two variables to the image, so the image's own values are
  visible here; the checker then sets the platform's before importing Airflow, exactly as a task
  pod's environment does);
* **airflow.cfg** / **dags**: the platform's mounts are readable where it mounts them;
* **airflow**: ``apache-airflow`` is installed at the expected version and ``import airflow``
  works, and Airflow itself resolves AIRFLOW_HOME, its config file and the DAGs folder to the
  platform's paths;
* **task-sdk**: the Task SDK is the version this Airflow requires and the module task pods run
  (``airflow.sdk.execution_time.execute_workload``) is there;
* **executor** (scheduler image only): this package's executor class imports, at the version the
  stack was deployed with;
* **execution-api**: the host of ``[core] execution_api_server_url`` resolves (retried for a
  while: the api-server Service is created in the same ``pulumi up``);
* **writable**: the logs folder and ``/tmp`` are writable (the root filesystem is read-only).

Exit status 0 when every check passed; otherwise 1, with one line naming the image and every
problem printed last and written to the container's termination message (``/dev/termination-log``,
at most 4096 bytes), which is what Kubernetes - and pulumi-kubernetes' Job await - show.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import socket
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

OK, FAIL, WARN = "ok", "FAIL", "warn"
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_MAX = 4096  # bytes Kubernetes keeps of a termination message
WORKLOAD_MODULE = "airflow.sdk.execution_time.execute_workload"
AIRFLOW_DIST = "apache-airflow"
SDK_DIST = "apache-airflow-task-sdk"
EXECUTOR_DIST = "airflow-k8s-platform"
ROLES = ("worker", "scheduler")


@dataclass(frozen=True)
class Spec:
    """What the platform expects of the image (the Job passes it as JSON)."""

    image: str
    role: str  # worker | scheduler
    uid: int
    gid: int
    airflow_home: str
    airflow_config: str
    dags_folder: str
    logs_folder: str
    airflow_version: str = ""  # empty: not checked
    executor_version: str = ""  # scheduler only; empty: not checked
    executor_class: str = "airflow_k8s.executor.airflow.KubernetesPlatformExecutor"
    execution_api_url: str = ""
    resolve_seconds: float = 120.0

    @classmethod
    def from_json(cls, text: str) -> Spec:
        data = json.loads(text)
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown spec keys {unknown}")
        spec = cls(**data)
        if spec.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {spec.role!r}")
        return spec


@dataclass
class Report:
    """The checks' results, in order."""

    lines: list[tuple[str, str, str]] = field(default_factory=list)  # (status, check, message)

    def add(self, status: str, check: str, message: str) -> None:
        self.lines.append((status, check, message))

    @property
    def problems(self) -> list[str]:
        return [message for status, _, message in self.lines if status == FAIL]


# -- messages (shared with the offline check) ----------------------------------------------------


def no_passwd_entry(uid: int, gid: int) -> str:
    return (
        f"uid {uid} has no passwd entry in the image, and Airflow refuses to start without a user name "
        f"(getpwuid(): uid not found: {uid}); add the user to the image "
        f"(useradd --uid {uid} --gid {gid} airflow) or set runAsUser to a user the image has"
    )


def other_airflow_home(variable: str, found: str, expected: str) -> str:
    return (
        f"the image sets {variable}={found}, but the platform mounts airflow.cfg and the DAGs under "
        f"{expected} and runs Airflow with {variable}={expected}: what the image keeps under {found} "
        f"(its airflow.cfg, plugins) would be ignored; build the image with {variable}={expected}"
    )


def wrong_version(what: str, found: str, expected: str, key: str) -> str:
    return f"{what} is {found} in the image, the platform expects {expected} ({key})"


def not_installed(dist: str) -> str:
    return f"{dist} is not installed in the image's Python ({sys.executable})"


def no_executor(detail: str) -> str:
    return (
        f"this platform's executor is not in the image ({detail}); build airflowImage from the project's "
        "Dockerfile (apache/airflow plus airflow-k8s-platform)"
    )


# -- checks ---------------------------------------------------------------------------------------


def check_user(spec: Spec, report: Report) -> None:
    import pwd

    uid, gid = os.getuid(), os.getgid()
    if (uid, gid) != (spec.uid, spec.gid):
        report.add(FAIL, "user", f"runs as {uid}:{gid}, not the configured runAsUser:runAsGroup {spec.uid}:{spec.gid}")
        return
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        report.add(FAIL, "user", no_passwd_entry(uid, gid))
        return
    report.add(OK, "user", f"uid {uid} ({entry.pw_name}), gid {gid}")


def check_home(spec: Spec, report: Report, environ: dict[str, str]) -> None:
    wrong = False
    for variable, expected in (("AIRFLOW_HOME", spec.airflow_home), ("AIRFLOW_CONFIG", spec.airflow_config)):
        found = environ.get(variable)
        if found and os.path.normpath(found) != os.path.normpath(expected):
            report.add(FAIL, "airflow-home", other_airflow_home(variable, found, expected))
            wrong = True
    if not wrong:
        report.add(OK, "airflow-home", f"the image leaves AIRFLOW_HOME to the platform ({spec.airflow_home})")
    environ["AIRFLOW_HOME"] = spec.airflow_home
    environ["AIRFLOW_CONFIG"] = spec.airflow_config


def check_mounts(spec: Spec, report: Report) -> None:
    try:
        with open(spec.airflow_config, encoding="utf-8") as cfg:
            cfg.read(1)
        report.add(OK, "airflow.cfg", f"readable at {spec.airflow_config}")
    except OSError as exc:
        report.add(FAIL, "airflow.cfg", f"airflow.cfg is not readable where the platform mounts it: {exc}")
    try:
        os.listdir(spec.dags_folder)
        report.add(OK, "dags", f"the DAGs folder {spec.dags_folder} is readable")
    except OSError as exc:
        report.add(FAIL, "dags", f"the DAGs folder is not readable where the platform mounts it: {exc}")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_airflow(spec: Spec, report: Report) -> Any:
    """The ``airflow.configuration`` module once Airflow imported, else None."""
    version = _version(AIRFLOW_DIST)
    if version is None:
        report.add(FAIL, "airflow", not_installed(AIRFLOW_DIST))
        return None
    if spec.airflow_version and version != spec.airflow_version:
        report.add(FAIL, "airflow", wrong_version("Airflow", version, spec.airflow_version, "airflowVersion"))
    try:
        importlib.import_module("airflow")
        configuration = importlib.import_module("airflow.configuration")
    except BaseException as exc:
        report.add(FAIL, "airflow", f"import airflow fails: {type(exc).__name__}: {exc}")
        return None
    resolved = {
        "AIRFLOW_HOME": (str(getattr(configuration, "AIRFLOW_HOME", "")), spec.airflow_home),
        "its config file": (str(getattr(configuration, "AIRFLOW_CONFIG", "")), spec.airflow_config),
        "[core] dags_folder": (str(configuration.conf.get("core", "dags_folder")), spec.dags_folder),
    }
    wrong = [f"{what} = {found} (expected {want})" for what, (found, want) in resolved.items() if found != want]
    if wrong:
        report.add(FAIL, "airflow", "Airflow does not use the platform's layout: " + ", ".join(wrong))
    elif not spec.airflow_version or version == spec.airflow_version:
        report.add(OK, "airflow", f"Airflow {version} imports and reads {spec.airflow_config}")
    return configuration


def required_sdk_version() -> str | None:
    """The Task SDK version apache-airflow pins (``apache-airflow-task-sdk==X``), if it pins one."""
    for dist in (AIRFLOW_DIST, "apache-airflow-core"):
        try:
            requirements = importlib.metadata.requires(dist) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requirements:
            name, _, rest = requirement.partition("==")
            if name.strip() == SDK_DIST and rest and ";" not in rest:
                return rest.strip()
    return None


def check_sdk(report: Report) -> None:
    version = _version(SDK_DIST)
    if version is None:
        report.add(FAIL, "task-sdk", not_installed(SDK_DIST))
        return
    required = required_sdk_version()
    if required is not None and version != required:
        report.add(FAIL, "task-sdk", f"the Task SDK is {version}, this Airflow requires {SDK_DIST}=={required}")
        return
    try:
        found = importlib.util.find_spec(WORKLOAD_MODULE) is not None
    except BaseException as exc:
        report.add(FAIL, "task-sdk", f"the Task SDK does not import: {type(exc).__name__}: {exc}")
        return
    if not found:
        report.add(FAIL, "task-sdk", f"{WORKLOAD_MODULE} (what task pods run) is missing")
        return
    report.add(OK, "task-sdk", f"Task SDK {version} with {WORKLOAD_MODULE}")


def check_executor(spec: Spec, report: Report) -> None:
    module_name, _, class_name = spec.executor_class.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        getattr(module, class_name)
    except BaseException as exc:
        report.add(FAIL, "executor", no_executor(f"import {spec.executor_class} fails: {type(exc).__name__}: {exc}"))
        return
    version = _version(EXECUTOR_DIST)
    if spec.executor_version and version != spec.executor_version:
        found = version or "an unpackaged copy"
        report.add(FAIL, "executor", wrong_version(EXECUTOR_DIST, found, spec.executor_version, "the deployed package"))
        return
    report.add(OK, "executor", f"{spec.executor_class} imports ({EXECUTOR_DIST} {version})")


def execution_api_url(spec: Spec, configuration: Any) -> str:
    """What Airflow resolves (the env var a task pod gets wins), else the spec's."""
    if configuration is not None:
        try:
            value = configuration.conf.get("core", "execution_api_server_url", fallback="")
            if value:
                return str(value)
        except Exception:  # noqa: S110 - fall back to the URL the platform configured
            pass
    return os.environ.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") or spec.execution_api_url


def check_execution_api(spec: Spec, report: Report, configuration: Any) -> None:
    url = execution_api_url(spec, configuration)
    if spec.execution_api_url and url.rstrip("/") != spec.execution_api_url.rstrip("/"):
        report.add(FAIL, "execution-api", f"Airflow calls the Execution API at {url}, not {spec.execution_api_url}")
        return
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname:
        report.add(FAIL, "execution-api", f"the Execution API URL {url!r} has no host")
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    deadline = time.monotonic() + spec.resolve_seconds
    while True:
        try:
            socket.getaddrinfo(parsed.hostname, port, proto=socket.IPPROTO_TCP)
            report.add(OK, "execution-api", f"{parsed.hostname} resolves")
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                report.add(
                    FAIL,
                    "execution-api",
                    f"the Execution API URL {url} does not resolve ({exc}; waited {spec.resolve_seconds:.0f} s)",
                )
                return
            time.sleep(2)


def check_writable(spec: Spec, report: Report) -> None:
    for path in (spec.logs_folder, tempfile.gettempdir()):
        try:
            with tempfile.NamedTemporaryFile(dir=path, prefix=".airflow-k8s-check-"):
                pass
        except OSError as exc:
            report.add(FAIL, "writable", f"{path} is not writable, and Airflow writes there: {exc}")
            return
    home = os.path.expanduser("~")
    if not os.access(home, os.W_OK):
        report.add(WARN, "writable", f"HOME {home} is read-only: libraries that cache under ~ must be pointed at /tmp")
        return
    report.add(OK, "writable", f"{spec.logs_folder} and {tempfile.gettempdir()} are writable")


def run_checks(spec: Spec, environ: dict[str, str] | None = None) -> Report:
    """Every check (module docstring), in order; ``environ`` (default ``os.environ``) is updated."""
    env: Any = os.environ if environ is None else environ
    report = Report()
    check_user(spec, report)
    check_home(spec, report, env)
    check_mounts(spec, report)
    configuration = check_airflow(spec, report)
    check_sdk(report)
    if spec.role == "scheduler":
        check_executor(spec, report)
    check_execution_api(spec, report, configuration)
    check_writable(spec, report)
    return report


def summary(spec: Spec, report: Report) -> str:
    """The one line that names the image and every problem (or says all passed)."""
    if report.problems:
        return f"image {spec.image} ({spec.role}) cannot run the platform's pods: " + "; ".join(report.problems)
    return f"image {spec.image} ({spec.role}): all {len(report.lines)} checks passed"


def write_termination_message(text: str, path: str | None = None) -> None:
    data = text.encode("utf-8")[:TERMINATION_MAX]
    try:
        with open(path or TERMINATION_LOG, "wb") as sink:
            sink.write(data)
    except OSError:
        pass  # not in a pod: the last line of the output says the same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check that an image can run the platform's pods.")
    parser.add_argument("--spec", required=True, help="what the platform expects, as JSON")
    args = parser.parse_args(argv)
    spec = Spec.from_json(args.spec)
    report = run_checks(spec)
    for status, check, message in report.lines:
        print(f"{status:<5} {check}: {message}", flush=True)
    line = summary(spec, report)
    print(line, flush=True)
    if report.problems:
        write_termination_message(line)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
