"""The image check without running the image: what a local image's files and settings show.

``python -m airflow_k8s.infra check-image PATH --role worker|scheduler`` reads the image with
:mod:`.layout` and checks, with the same messages as the in-image check
(:mod:`.incontainer`):

* **user**: ``etc/passwd`` has the configured uid;
* **airflow-home**: the image config's ``Env`` does not set another ``AIRFLOW_HOME`` /
  ``AIRFLOW_CONFIG`` (unknown for a plain root filesystem: reported as not checked);
* **airflow** / **task-sdk**: the installed distributions' ``METADATA`` (any ``site-packages``):
  Airflow at the expected version, the Task SDK at the version that Airflow pins;
* **executor** (scheduler image): the ``airflow-k8s-platform`` distribution, at the expected version.

Reported as **not checked**, because only running the image shows them: that the packages
actually import, what Airflow resolves its paths to, the platform's mounts, the Execution API's
name, writable paths.  The preflight Job checks those on ``pulumi up``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_k8s.executor.imagecheck import incontainer as messages
from airflow_k8s.executor.imagecheck.layout import ImageFiles

SKIP = "skip"
NOT_CHECKED = (
    "that Airflow, the Task SDK and the executor really import (the image is not run)",
    "what Airflow resolves AIRFLOW_HOME, its config file and the DAGs folder to at run time",
    "the platform's mounts (airflow.cfg, DAGs), writable paths and the Execution API's DNS name",
)


@dataclass(frozen=True)
class Expectations:
    role: str
    uid: int
    gid: int
    airflow_home: str
    airflow_config: str
    airflow_version: str = ""
    executor_version: str = ""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(image: ImageFiles) -> dict[str, list[tuple[str, str]]]:
    """canonical name -> [(version, METADATA text)] of every distribution the image holds."""
    out: dict[str, list[tuple[str, str]]] = {}
    for _, text in image.dist_metadata():
        name = re.search(r"^Name:\s*(\S+)", text, re.MULTILINE)
        version = re.search(r"^Version:\s*(\S+)", text, re.MULTILINE)
        if name and version:
            out.setdefault(_canonical(name.group(1)), []).append((version.group(1), text))
    return out


def passwd_has(image: ImageFiles, uid: int) -> str | None:
    """The user name of ``uid`` in ``etc/passwd``, or None."""
    for line in (image.text("etc/passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].strip() == str(uid):
            return fields[0]
    return None


def check(image: ImageFiles, want: Expectations) -> messages.Report:
    report = messages.Report()
    name = passwd_has(image, want.uid)
    if name is None:
        report.add(messages.FAIL, "user", messages.no_passwd_entry(want.uid, want.gid))
    else:
        report.add(messages.OK, "user", f"uid {want.uid} is {name!r} in /etc/passwd")
    _check_env(image, want, report)
    dists = distributions(image)
    _check_airflow(dists, want, report)
    if want.role == "scheduler":
        _check_executor(dists, want, report)
    for what in NOT_CHECKED:
        report.add(SKIP, "not checked", what)
    return report


def _check_env(image: ImageFiles, want: Expectations, report: messages.Report) -> None:
    env = image.env()
    if env is None:
        report.add(SKIP, "airflow-home", f"a plain root filesystem carries no environment ({image.source})")
        return
    wrong = False
    for variable, expected in (("AIRFLOW_HOME", want.airflow_home), ("AIRFLOW_CONFIG", want.airflow_config)):
        found = env.get(variable)
        if found and found.rstrip("/") != expected.rstrip("/"):
            report.add(messages.FAIL, "airflow-home", messages.other_airflow_home(variable, found, expected))
            wrong = True
    if not wrong:
        report.add(messages.OK, "airflow-home", "the image's environment leaves AIRFLOW_HOME to the platform")


def _check_airflow(dists: dict[str, list[tuple[str, str]]], want: Expectations, report: messages.Report) -> None:
    airflow = dists.get(messages.AIRFLOW_DIST)
    if not airflow:
        report.add(
            messages.FAIL, "airflow", f"{messages.AIRFLOW_DIST} is not installed in any site-packages of the image"
        )
    else:
        versions = sorted({v for v, _ in airflow})
        if want.airflow_version and want.airflow_version not in versions:
            found = ", ".join(versions)
            report.add(
                messages.FAIL,
                "airflow",
                messages.wrong_version("Airflow", found, want.airflow_version, "airflowVersion"),
            )
        else:
            report.add(messages.OK, "airflow", f"{messages.AIRFLOW_DIST} {', '.join(versions)} installed")
    sdk = dists.get(messages.SDK_DIST)
    if not sdk:
        report.add(messages.FAIL, "task-sdk", f"{messages.SDK_DIST} is not installed in any site-packages of the image")
        return
    pinned = {
        m.group(1)
        for _, text in airflow or []
        for m in re.finditer(r"^Requires-Dist:\s*apache-airflow-task-sdk\s*==\s*([^\s;,]+)\s*$", text, re.MULTILINE)
    }
    versions = sorted({v for v, _ in sdk})
    if pinned and not pinned & set(versions):
        report.add(
            messages.FAIL,
            "task-sdk",
            f"the Task SDK is {', '.join(versions)}, "
            f"this Airflow requires {messages.SDK_DIST}=={', '.join(sorted(pinned))}",
        )
        return
    report.add(messages.OK, "task-sdk", f"{messages.SDK_DIST} {', '.join(versions)} installed")


def _check_executor(dists: dict[str, list[tuple[str, str]]], want: Expectations, report: messages.Report) -> None:
    found = sorted({v for v, _ in dists.get(messages.EXECUTOR_DIST, [])})
    if not found:
        report.add(messages.FAIL, "executor", messages.no_executor(f"no {messages.EXECUTOR_DIST} in any site-packages"))
    elif want.executor_version and want.executor_version not in found:
        report.add(
            messages.FAIL,
            "executor",
            messages.wrong_version(messages.EXECUTOR_DIST, ", ".join(found), want.executor_version, "this checkout"),
        )
    else:
        report.add(messages.OK, "executor", f"{messages.EXECUTOR_DIST} {', '.join(found)} installed")


def summary(image: ImageFiles, want: Expectations, report: messages.Report) -> str:
    if report.problems:
        return f"image {image.source} ({want.role}) cannot run the platform's pods: " + "; ".join(report.problems)
    checked = sum(1 for status, _, _ in report.lines if status != SKIP)
    return f"image {image.source} ({want.role}): {checked} checks passed offline; see 'not checked' above"
