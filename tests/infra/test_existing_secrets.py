"""Bring your own Secrets: the operator's Secrets instead of the platform's keys, and remote-log credentials."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from airflow_k8s.infra.config.stack_config import StackConfigError, parse_stack_config
from airflow_k8s.infra.render.offline import RANDOM_BYTES, Evaluation, evaluate, unwrap

from .conftest import PROVIDER_FLAGS, SECRET_DB_URL, objects, one

ENV = {
    "database-url": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "jwt-secret": "AIRFLOW__API_AUTH__JWT_SECRET",
}


def run(**config: str) -> Evaluation:
    full = {**PROVIDER_FLAGS, **{f"airflow-k8s:{k}": v for k, v in config.items()}}
    secrets = [f"airflow-k8s:{k}" for k in ("databaseUrl", "fernetKey", "jwtSecret", "apiSecretKey") if k in config]
    return evaluate(full, secret_keys=secrets)


def refs(spec: dict[str, Any], env_name: str) -> list[dict[str, str]]:
    return [
        e["valueFrom"]["secretKeyRef"]
        for c in [*spec.get("initContainers", []), *spec["containers"]]
        for e in c.get("env") or []
        if e["name"] == env_name
    ]


def pods(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    out = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in objects(evaluation, "Deployment")}
    out["airflow-db-migrate"] = one(evaluation, "Job", "airflow-db-migrate")["spec"]["template"]["spec"]
    return out


def test_the_database_url_from_an_existing_secret_needs_no_databaseurl() -> None:
    evaluation = run(existingDatabaseUrlSecret="airflow-metadata")
    (secret,) = evaluation.of_type("kubernetes:core/v1:Secret")
    assert "database-url" not in unwrap(secret.inputs["stringData"])
    for name, spec in pods(evaluation).items():
        found = refs(spec, ENV["database-url"])
        assert found and all(r == {"name": "airflow-metadata", "key": "connection"} for r in found), name


def test_a_key_in_an_existing_secret_is_neither_set_nor_generated() -> None:
    evaluation = run(databaseUrl=SECRET_DB_URL, existingJwtSecretSecret="jwt-keys:signing")
    (secret,) = evaluation.of_type("kubernetes:core/v1:Secret")
    assert set(unwrap(secret.inputs["stringData"])) == {
        "database-url",
        "fernet-key",
        "api-secret-key",
        "admin-password",
    }
    generated = {r.name for r in evaluation.of_type(RANDOM_BYTES)}
    assert "airflow-secrets-jwt-secret" not in generated and "airflow-secrets-fernet-key" in generated
    specs = pods(evaluation)
    for name in ("airflow-scheduler", "airflow-api-server"):
        assert refs(specs[name], ENV["jwt-secret"]) == [{"name": "jwt-keys", "key": "signing"}]
    assert refs(specs["airflow-scheduler"], ENV["database-url"])[0]["name"] == "airflow-secrets"


def test_one_source_per_secret() -> None:
    with pytest.raises(StackConfigError, match=r"databaseUrl: is not set: .* or name an existing Secret holding it"):
        parse_stack_config({}, secrets_set=())
    with pytest.raises(StackConfigError, match="existingFernetKeySecret = 'f': and the secret airflow-k8s:fernetKey"):
        parse_stack_config({"existingFernetKeySecret": "f"}, secrets_set={"databaseUrl", "fernetKey"})
    with pytest.raises(StackConfigError, match=r"existingJwtSecretSecret = 'Bad_Name'"):
        parse_stack_config({"existingJwtSecretSecret": "Bad_Name"}, secrets_set={"databaseUrl"})


def test_remote_log_credentials_reach_the_control_plane_roles_never_task_pods() -> None:
    evaluation = run(
        databaseUrl=SECRET_DB_URL,
        remoteLogSecret="aws-logs-conn",
        remoteBaseLogFolder="s3://b/logs",
        remoteLogConnId="aws_logs",
        remoteLogCidr="52.216.0.0/15",
    )
    for name, spec in pods(evaluation).items():
        env_from = spec["containers"][0].get("envFrom") or []
        expected = [] if name == "airflow-db-migrate" else [{"secretRef": {"name": "aws-logs-conn"}}]
        assert env_from == expected, name
    templates = one(evaluation, "ConfigMap", "airflow-pod-templates")["data"]
    assert all("aws-logs-conn" not in text for text in templates.values())


def test_rotating_the_reference_rolls_the_readers() -> None:
    def hmac_of(evaluation: Evaluation) -> dict[str, str]:
        return {
            d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["airflow-k8s/secrets-hmac"]
            for d in objects(evaluation, "Deployment")
        }

    before = hmac_of(run(databaseUrl=SECRET_DB_URL, existingJwtSecretSecret="jwt-v1"))
    after = hmac_of(run(databaseUrl=SECRET_DB_URL, existingJwtSecretSecret="jwt-v2"))
    assert {n for n in before if before[n] != after[n]} == {"airflow-scheduler", "airflow-api-server"}


def test_the_stack_program_without_any_database_url_stops_naming_the_key() -> None:
    with pytest.raises(pulumi.RunError, match="airflow-k8s:databaseUrl: is not set"):
        run()
