"""The in-image checker's own checks, without Airflow: user, layout env, mounts, writable paths, the one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_k8s.executor.imagecheck import incontainer
from airflow_k8s.executor.imagecheck.incontainer import OK, Report, Spec


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "logs").mkdir()
    (home / "airflow.cfg").write_text("[core]\n")
    return Spec(
        image="registry.example/worker:1", role="worker", uid=os.getuid(), gid=os.getgid(),
        airflow_home=str(home), airflow_config=str(home / "airflow.cfg"), dags_folder=str(home / "dags"),
        logs_folder=str(home / "logs"), execution_api_url="http://localhost:8080/execution/", resolve_seconds=0,
    )  # fmt: skip


def test_the_pods_uid_must_be_the_configured_one_and_have_a_passwd_entry(spec: Spec, monkeypatch):
    report = Report()
    incontainer.check_user(spec, report)
    assert report.lines[0][:2] == (OK, "user")
    report = Report()
    incontainer.check_user(Spec(**{**spec.__dict__, "uid": 50000}), report)
    assert report.problems == [
        f"runs as {os.getuid()}:{os.getgid()}, not the configured runAsUser:runAsGroup 50000:{spec.gid}"
    ]

    import pwd

    def no_entry(uid: int):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    report = Report()
    incontainer.check_user(spec, report)
    assert report.problems == [incontainer.no_passwd_entry(spec.uid, spec.gid)]


def test_an_image_that_declares_another_airflow_home_fails_and_the_platforms_is_set_for_the_rest(spec: Spec):
    environ = {"AIRFLOW_HOME": "/home/airflow", "PATH": "/usr/bin"}
    report = Report()
    incontainer.check_home(spec, report, environ)
    assert report.problems == [incontainer.other_airflow_home("AIRFLOW_HOME", "/home/airflow", spec.airflow_home)]
    assert (environ["AIRFLOW_HOME"], environ["AIRFLOW_CONFIG"]) == (spec.airflow_home, spec.airflow_config)
    report = Report()
    incontainer.check_home(spec, report, {"AIRFLOW_HOME": spec.airflow_home + "/"})  # the same path
    assert report.problems == []


def test_missing_mounts_and_read_only_paths_are_named(spec: Spec, tmp_path: Path):
    moved = Spec(**{**spec.__dict__, "airflow_config": str(tmp_path / "nope.cfg"), "dags_folder": str(tmp_path / "x")})
    report = Report()
    incontainer.check_mounts(moved, report)
    assert [p.split(":")[0] for p in report.problems] == [
        "airflow.cfg is not readable where the platform mounts it",
        "the DAGs folder is not readable where the platform mounts it",
    ]
    report = Report()
    incontainer.check_writable(Spec(**{**spec.__dict__, "logs_folder": str(tmp_path / "absent")}), report)
    assert report.problems[0].startswith(f"{tmp_path / 'absent'} is not writable, and Airflow writes there")


def test_an_unresolvable_execution_api_is_named_with_how_long_it_was_waited_for(spec: Spec):
    bad = Spec(**{**spec.__dict__, "execution_api_url": "http://airflow-api-server.invalid:8080/execution/"})
    report = Report()
    incontainer.check_execution_api(bad, report, None)
    (problem,) = report.problems
    assert problem.startswith(
        "the Execution API URL http://airflow-api-server.invalid:8080/execution/ does not resolve"
    )
    assert problem.endswith("waited 0 s)")


def test_a_failed_check_ends_in_one_line_naming_the_image_also_written_as_termination_message(
    spec, tmp_path, monkeypatch
):
    sink = tmp_path / "termination-log"
    monkeypatch.setattr(incontainer, "TERMINATION_LOG", str(sink))
    monkeypatch.setenv("AIRFLOW_HOME", "/somewhere/else")
    code = incontainer.main(["--spec", json.dumps(spec.__dict__)])
    assert code == 1
    line = sink.read_text()
    assert line.startswith("image registry.example/worker:1 (worker) cannot run the platform's pods: ")
    assert "the image sets AIRFLOW_HOME=/somewhere/else" in line
    assert len(sink.read_bytes()) <= incontainer.TERMINATION_MAX


def test_a_spec_with_unknown_keys_or_role_is_refused():
    with pytest.raises(ValueError, match="unknown spec keys"):
        Spec.from_json('{"image": "x", "colour": "blue"}')
    with pytest.raises(ValueError, match="role must be one of"):
        Spec.from_json('{"image": "x", "role": "dag-processor", "uid": 1, "gid": 0, "airflow_home": "/a", '
                       '"airflow_config": "/a/c", "dags_folder": "/a/d", "logs_folder": "/a/l"}')  # fmt: skip
