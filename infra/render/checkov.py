"""Run checkov's Kubernetes policies over a rendered directory; zero failures allowed.

The only exceptions are :data:`SKIPS`: each names one check, the resources it may be skipped for
(a regex over checkov's ``Kind.namespace.name``) and why.  Keep it short and honest - a skip is
a decision someone can review, not a way to make a red build green.

checkov is found via ``$CHECKOV``, then ``PATH``, then the project's ``.venv-checkov`` (where
``make setup`` installs it, apart from the project's venv because it pins many libraries).
Missing checkov is a warning, or an error when ``REQUIRE_CHECKOV=1`` (CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Skip:
    check_id: str
    resources: str  # regex, full match against checkov's resource id "Kind.namespace.name"
    reason: str


SKIPS: tuple[Skip, ...] = (
    Skip(
        "CKV_K8S_35",
        r"(Deployment|Job|CronJob)\.[^.]+\.[^.]+-(scheduler|api-server|dag-processor|triggerer|db-migrate|db-clean)",
        "Airflow reads its sensitive settings (database URL, Fernet key, JWT secret, [api] secret_key) from "
        "AIRFLOW__<SECTION>__<KEY> environment variables, which keeps them out of airflow.cfg; each role gets "
        "only the Secret keys it needs (secrets.py), and task pods get none.",
    ),
    Skip(
        "CKV_K8S_38",
        r"Deployment\.[^.]+\.[^.]+-(scheduler|api-server)",
        "Service account tokens are mounted only where the Kubernetes API is used: the scheduler runs the "
        "executor (creates and watches task pods), the api-server reads running task pods' logs. Each "
        "account's Role is namespaced and least-privilege (rbac.py); every other pod mounts no token.",
    ),
    Skip(
        "CKV_K8S_43",
        r"(Deployment|Job|CronJob)\.[^.]+\.[^.]+-(scheduler|api-server|dag-processor|triggerer|db-migrate|db-clean)",
        "The control-plane image comes from stack config (airflowImage); the dev stack pins a version tag "
        "because no digest exists before the image is built. airflowImage accepts name@sha256:<digest>, "
        "which production stacks should use.",
    ),
    Skip(
        "CKV_K8S_43",
        r"Job\.[^.]+\.[^.]+-check-(worker|airflow)-[0-9a-f]{8}",
        "The image preflight Jobs run the configured images (workerImage, airflowImage) exactly as given, "
        "tag or digest: checking what the stack deploys is their purpose.",
    ),
    Skip(
        "CKV_K8S_15",
        r"Job\.[^.]+\.[^.]+-check-worker-[0-9a-f]{8}",
        "The worker image check runs workerImage exactly as task pods do, with workerImagePullPolicy "
        "(IfNotPresent by default): a check with another pull policy would not prove what tasks get.",
    ),
)


@dataclass(frozen=True)
class CheckovFailure:
    check_id: str
    name: str
    file: str
    resource: str

    def __str__(self) -> str:
        return f"{self.file}: [checkov {self.check_id}] {self.name} ({self.resource})"


@dataclass
class CheckovReport:
    available: bool
    command: list[str] = field(default_factory=list)
    passed: int = 0
    failed: list[CheckovFailure] = field(default_factory=list)
    skipped: list[tuple[CheckovFailure, Skip]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.available and self.error is None and not self.failed


def find_checkov() -> str | None:
    explicit = os.environ.get("CHECKOV")
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    on_path = shutil.which("checkov")
    if on_path:
        return on_path
    local = PROJECT_DIR / ".venv-checkov" / "bin" / "checkov"
    return str(local) if local.exists() else None


def skip_for(failure: CheckovFailure, skips: tuple[Skip, ...] = SKIPS) -> Skip | None:
    for skip in skips:
        if skip.check_id == failure.check_id and re.fullmatch(skip.resources, failure.resource):
            return skip
    return None


def parse_report(stdout: str) -> tuple[int, list[CheckovFailure]]:
    """(passed count, failures) from checkov's ``-o json`` output (one or many frameworks)."""
    text = stdout.strip()
    if not text:
        raise ValueError("checkov printed nothing")
    data: Any = json.loads(text[text.find("{") if text[0] not in "[{" else 0 :])
    reports = data if isinstance(data, list) else [data]
    passed, failures = 0, []
    for report in reports:
        if not isinstance(report, dict):
            continue
        passed += int((report.get("summary") or {}).get("passed", 0))
        for item in (report.get("results") or {}).get("failed_checks") or []:
            failures.append(
                CheckovFailure(
                    str(item.get("check_id")),
                    str(item.get("check_name")),
                    Path(str(item.get("file_path", "?"))).name,
                    str(item.get("resource", "?")),
                )
            )
    return passed, failures


def run_checkov(directory: Path, *, executable: str | None = None) -> CheckovReport:
    executable = executable or find_checkov()
    if executable is None:
        return CheckovReport(available=False)
    command = [
        executable, "-d", str(directory), "--framework", "kubernetes",
        "--skip-download", "--quiet", "--compact", "-o", "json",
    ]  # fmt: skip
    report = CheckovReport(available=True, command=command)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        report.error = f"could not run checkov: {exc}"
        return report
    try:
        passed, failures = parse_report(done.stdout)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        tail = (done.stderr or done.stdout).strip()[-800:]
        report.error = f"unreadable checkov output (exit {done.returncode}): {exc}\n{tail}"
        return report
    report.passed = passed
    for failure in sorted(failures, key=lambda f: (f.file, f.check_id, f.resource)):
        skip = skip_for(failure)
        if skip is None:
            report.failed.append(failure)
        else:
            report.skipped.append((failure, skip))
    return report
