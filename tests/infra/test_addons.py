"""What chart users get besides Airflow's roles: git-sync, db clean, auth and admin, UI Ingress/HTTPRoute, StatsD."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pulumi
import pytest

from airflow_k8s.executor.pods import security
from airflow_k8s.infra.config.quota import pod_demand
from airflow_k8s.infra.config.stack_config import StackConfigError, parse_stack_config, to_raw
from airflow_k8s.infra.render.manifests import manifests
from airflow_k8s.infra.render.reachability import reachability_problems

from .conftest import objects, one

NAMED = {"databaseCidr": "10.1.0.0/16", "apiServerCidr": "10.0.0.0/16"}
GIT = {
    "gitSyncRepo": "https://github.com/example-org/dags.git",
    "gitSyncSubPath": "dags",
    "gitSyncCredentialsSecret": "git-token",
    "gitSyncCidrs": ["140.82.112.0/20"],
}


def cfg(evaluation) -> configparser.ConfigParser:  # type: ignore[no-untyped-def]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(one(evaluation, "ConfigMap", "airflow-config")["data"]["airflow.cfg"])
    return parser


def pod(evaluation, name: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return one(evaluation, "Deployment", name)["spec"]["template"]["spec"]


def parse(**raw: Any) -> Any:
    return parse_stack_config({k: to_raw(v) for k, v in raw.items()}, secrets_set={"databaseUrl"})


# -- git-sync --------------------------------------------------------------------------------------


def test_git_sync_checks_dags_out_into_the_claim_beside_the_dag_processor(stack) -> None:
    evaluation = stack(**NAMED, **GIT)
    spec = pod(evaluation, "airflow-dag-processor")
    (sidecar,) = [c for c in spec["containers"] if c["name"] == "git-sync"]
    assert sidecar["args"][:5] == [
        "--repo=https://github.com/example-org/dags.git", "--ref=main", "--root=/git", "--link=repo", "--period=60s",
    ]  # fmt: skip
    assert sidecar["envFrom"] == [{"secretRef": {"name": "git-token"}}]
    assert {"mountPath": "/git", "name": "dags-rw"} in sidecar["volumeMounts"]
    assert {"name": "dags-rw", "persistentVolumeClaim": {"claimName": "airflow-dags"}} in spec["volumes"]
    main = spec["containers"][0]
    assert {m["name"]: m.get("readOnly") for m in main["volumeMounts"]}["dags"] is True  # readers stay read-only
    assert security.restricted_violations(one(evaluation, "Deployment", "airflow-dag-processor")) == []
    assert cfg(evaluation)["core"]["dags_folder"] == "/opt/airflow/dags/repo/dags"
    # the token reaches only the sidecar: no task template, no other role
    texts = "\n".join(one(evaluation, "ConfigMap", "airflow-pod-templates")["data"].values())
    assert "git-token" not in texts
    assert all("git-token" not in str(pod(evaluation, n)) for n in ("airflow-scheduler", "airflow-triggerer"))


def test_git_sync_over_ssh_checks_host_keys(stack) -> None:
    evaluation = stack(
        **NAMED, gitSyncRepo="git@github.com:example-org/dags.git", gitSyncSshKeySecret="git-ssh",
        gitSyncCidrs=["140.82.112.0/20"],
    )  # fmt: skip
    spec = pod(evaluation, "airflow-dag-processor")
    (sidecar,) = [c for c in spec["containers"] if c["name"] == "git-sync"]
    assert "--ssh-key-file=/etc/git-secret/gitSshKey" in sidecar["args"]
    assert "--ssh-known-hosts-file=/etc/git-secret/known_hosts" in sidecar["args"]
    assert {"name": "git-secret", "secret": {"defaultMode": 0o440, "secretName": "git-ssh"}} in spec["volumes"]


def test_git_sync_egress_and_quota(stack) -> None:
    evaluation = stack(**NAMED, **GIT)
    (policy,) = [
        p for p in objects(evaluation, "NetworkPolicy") if p["metadata"]["name"] == "airflow-dag-processor-git"
    ]
    assert policy["spec"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "140.82.112.0/20"}}],
            "ports": [{"port": 443, "protocol": "TCP"}, {"port": 22, "protocol": "TCP"}],
        }
    ]
    config = parse(**NAMED, **GIT)
    assert reachability_problems([m.obj for m in manifests(evaluation)], config.platform)[0] == []
    from airflow_k8s.infra.config.quota import pod_resources

    with_git, without = pod_resources(config.platform, "dagProcessor"), pod_resources(parse().platform, "dagProcessor")
    assert with_git[0]["cpu"] - without[0]["cpu"] == Decimal("0.01")  # the sidecar's requests and limits
    assert with_git[1]["cpu"] - without[1]["cpu"] == Decimal("0.2")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({**GIT, "gitSyncCidrs": []}, "gitSyncCidrs = []: is needed with airflow-k8s:gitSyncRepo"),
        ({**GIT, "gitSyncCidrs": ["0.0.0.0/0"]}, "opens the dag-processor to every address"),
        ({**GIT, "dagsAccessMode": "ReadOnlyMany"}, "it needs ReadWriteMany"),
        ({**GIT, "gitSyncSshKeySecret": "k"}, "and gitSyncCredentialsSecret: set one"),
        ({"gitSyncRepo": "ftp://example.com/x"}, "expected https://"),
    ],
)
def test_git_sync_settings_are_checked(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(StackConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(**NAMED, **overrides)


# -- airflow db clean -----------------------------------------------------------------------------


def test_db_clean_is_a_hardened_cronjob_that_reaches_only_the_database(stack) -> None:
    evaluation = stack(**NAMED, dbCleanEnabled=True, dbCleanSchedule="30 2 * * 0", dbCleanRetentionDays=30)
    cronjob = one(evaluation, "CronJob", "airflow-db-clean")
    assert cronjob["apiVersion"] == "batch/v1"
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"], spec["timeZone"]) == ("30 2 * * 0", "Forbid", "Etc/UTC")
    job_pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = job_pod["containers"]
    assert container["args"][:2] == ["bash", "-c"] and '-d "-30 days"' in container["args"][2]
    assert "airflow db clean --clean-before-timestamp" in container["args"][2] and "--yes" in container["args"][2]
    assert job_pod["automountServiceAccountToken"] is False and job_pod["restartPolicy"] == "Never"
    assert security.restricted_violations(cronjob) == [] and security.hardening_violations(cronjob) == []
    assert evaluation.plain_outputs()["dbCleanCronJobName"] == "airflow-db-clean"
    config = parse(**NAMED, dbCleanEnabled=True)
    assert reachability_problems([m.obj for m in manifests(evaluation)], config.platform)[0] == []
    assert pod_demand(config.platform)[0] == pod_demand(parse(**NAMED).platform)[0] + 1
    # the script really computes the cutoff with GNU date
    script = container["args"][2].replace("exec airflow db clean", "echo")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.startswith("--clean-before-timestamp 20") and "+00:00 --yes --skip-archive" in done.stdout


# -- auth manager and the first admin --------------------------------------------------------------


def test_the_simple_auth_managers_admin_password_comes_from_the_secret_never_a_log(stack) -> None:
    evaluation = stack(adminUser="ops")
    core = cfg(evaluation)["core"]
    assert core["simple_auth_manager_users"] == "ops:admin"
    assert core["auth_manager"].endswith("SimpleAuthManager")
    spec = pod(evaluation, "airflow-api-server")
    (init,) = [c for c in spec["initContainers"] if c["name"] == "admin-password"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in init["env"]}
    assert env["ADMIN_PASSWORD"] == {"secretKeyRef": {"name": "airflow-secrets", "key": "admin-password"}}
    assert env["ADMIN_USER"] == "ops" and env["PASSWORDS_FILE"] == core["simple_auth_manager_passwords_file"]


def test_the_init_containers_script_writes_the_passwords_file_privately(tmp_path: Path) -> None:
    from airflow_k8s.infra.components.podoptions import admin_password_init

    init = admin_password_init("img", "Always", "ops", "airflow-secrets")
    target = tmp_path / "passwords.json"
    env = {**os.environ, "PASSWORDS_FILE": str(target), "ADMIN_USER": "ops", "ADMIN_PASSWORD": 's3cr3t p"w'}
    subprocess.run([sys.executable, *init["command"][1:]], env=env, check=True, timeout=30)
    import json

    assert json.loads(target.read_text()) == {"ops": 's3cr3t p"w'}
    assert target.stat().st_mode & 0o777 == 0o600


def test_another_auth_manager_gets_no_admin_password(stack) -> None:
    fab = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    evaluation = stack(authManager=fab)
    core = cfg(evaluation)["core"]
    assert core["auth_manager"] == fab and "simple_auth_manager_users" not in core
    assert [c["name"] for c in pod(evaluation, "airflow-api-server")["initContainers"]] == ["wait-for-migrations"]
    assert "admin-password" not in objects(evaluation, "Secret")[0]["stringData"]
    with pytest.raises(StackConfigError, match="expected simple or a class path"):
        parse(authManager="fab")


# -- the UI from outside ---------------------------------------------------------------------------


def test_an_ingress_with_tls_sets_the_base_url_and_needs_the_controllers_namespace(stack) -> None:
    evaluation = stack(
        uiHost="airflow.example.com", uiIngressClassName="nginx", uiTlsSecret="af-tls", uiIngressNamespace="ingress"
    )
    ingress = one(evaluation, "Ingress", "airflow-ui")
    assert ingress["spec"] == {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": "airflow.example.com",
                "http": {
                    "paths": [
                        {
                            "backend": {"service": {"name": "airflow-api-server", "port": {"number": 8080}}},
                            "path": "/",
                            "pathType": "Prefix",
                        }
                    ]
                },
            }
        ],
        "tls": [{"hosts": ["airflow.example.com"], "secretName": "af-tls"}],
    }
    assert cfg(evaluation)["api"]["base_url"] == "https://airflow.example.com"
    with pytest.raises(pulumi.RunError, match="uiIngressNamespace = '': is needed with airflow-k8s:uiHost"):
        stack(uiHost="airflow.example.com")


def test_an_http_route_attaches_to_a_gateway(stack) -> None:
    evaluation = stack(uiHost="airflow.example.com", uiGateway="gateways/public", uiIngressNamespace="gateways")
    route = one(evaluation, "HTTPRoute", "airflow-ui")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "namespace": "gateways"}
    ]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"kind": "Service", "name": "airflow-api-server", "port": 8080}]
    assert not objects(evaluation, "Ingress")
    with pytest.raises(StackConfigError, match="TLS terminates at the Gateway's listener"):
        parse(uiHost="a.example.com", uiGateway="g/p", uiTlsSecret="t", uiIngressNamespace="g")


# -- Airflow's own metrics -------------------------------------------------------------------------


def test_statsd_exporter_receives_every_pods_metrics(stack) -> None:
    evaluation = stack(**NAMED, airflowMetrics="statsd")
    metrics = cfg(evaluation)["metrics"]
    assert metrics["statsd_on"] == "True" and metrics["statsd_port"] == "9125"
    assert metrics["statsd_host"] == "airflow-statsd.airflow.svc.cluster.local"
    deployment = one(evaluation, "Deployment", "airflow-statsd")
    assert security.restricted_violations(deployment) == [] and security.hardening_violations(deployment) == []
    service = one(evaluation, "Service", "airflow-statsd")
    assert {p["name"]: (p["port"], p["protocol"]) for p in service["spec"]["ports"]} == {
        "statsd": (9125, "UDP"),
        "metrics": (9102, "TCP"),
    }
    config = parse(**NAMED, airflowMetrics="statsd")
    wrong, checked = reachability_problems([m.obj for m in manifests(evaluation)], config.platform)
    assert wrong == [] and checked > 300
    assert "[metrics]" not in one(stack(), "ConfigMap", "airflow-config")["data"]["airflow.cfg"]  # off by default
