"""Control-plane logs: a sized emptyDir and a log-groomer sidecar, so the kubelet never evicts a role."""

from __future__ import annotations

import pytest

from airflow_k8s.infra.config.stack_config import StackConfigError, parse_stack_config

from .conftest import objects, one

LONG_RUNNING = ("airflow-scheduler", "airflow-api-server", "airflow-dag-processor", "airflow-triggerer")


def _pods(evaluation) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in objects(evaluation, "Deployment")}


def test_every_long_running_role_grooms_its_logs_volume_by_age_and_size(stack) -> None:
    pods = _pods(stack(logsVolumeSize="2Gi", logRetentionDays=7))
    assert set(pods) == set(LONG_RUNNING)
    for name, pod in pods.items():
        (logs,) = [v for v in pod["volumes"] if v["name"] == "logs"]
        assert logs == {"name": "logs", "emptyDir": {"sizeLimit": "2Gi"}}, name
        (groomer,) = [c for c in pod["containers"] if c["name"] == "log-groomer"]
        assert groomer["command"] == [
            "python",
            "-m",
            "airflow_k8s.executor",
            "groom-logs",
            "--dir",
            "/opt/airflow/logs",
        ]
        # 7 days, then oldest first down to 80% of 2Gi
        assert groomer["args"] == [
            "--max-age-days",
            "7",
            "--max-bytes",
            str(int(2 * 1024**3 * 0.8)),
            "--every-minutes",
            "15",
        ]
        assert groomer["volumeMounts"] == [{"mountPath": "/opt/airflow/logs", "name": "logs"}]
        assert groomer["livenessProbe"]["exec"]["command"][-2:] == ["/opt/airflow/logs/.log-groomer-heartbeat", "2700"]
        assert "airflow_k8s" not in " ".join(groomer["livenessProbe"]["exec"]["command"])  # cheap: no package import
        assert groomer["resources"] == {
            "limits": {"cpu": "100m", "memory": "128Mi"},
            "requests": {"cpu": "10m", "memory": "64Mi"},
        }
        assert "env" not in groomer or all("valueFrom" not in e for e in groomer["env"])  # no credentials


def test_the_default_keeps_the_chart_retention_on_a_1gi_volume_and_jobs_have_no_groomer(default_eval) -> None:
    scheduler = _pods(default_eval)["airflow-scheduler"]
    (groomer,) = [c for c in scheduler["containers"] if c["name"] == "log-groomer"]
    assert groomer["args"][:4] == ["--max-age-days", "15", "--max-bytes", str(int(1024**3 * 0.8))]
    job = one(default_eval, "Job", "airflow-db-migrate")["spec"]["template"]["spec"]
    assert [c["name"] for c in job["containers"]] == ["db-migrate"]


@pytest.mark.parametrize(("key", "value"), [("logsVolumeSize", "1Gb"), ("logRetentionDays", "0")])
def test_bad_log_settings_name_the_key(key: str, value: str) -> None:
    with pytest.raises(StackConfigError, match=f"airflow-k8s:{key} = '{value}'"):
        parse_stack_config({key: value}, secrets_set={"databaseUrl"})
