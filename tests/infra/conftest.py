"""Fixtures for the infra tests: run the real stack program under Pulumi mocks.

``stack(**overrides)`` evaluates :func:`airflow_k8s.infra.stack.main` with the stack-config defaults, a
known database URL secret (:data:`SECRET_DB_URL`) and the given overrides (Python values,
converted the way the Pulumi CLI passes config).  No CLI, plugin or cluster is involved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_k8s.infra.config.stack_config import PROJECT, to_raw
from airflow_k8s.infra.render.manifests import Manifest, manifests
from airflow_k8s.infra.render.offline import Evaluation, evaluate

SECRET_DB_URL = "postgresql://airflow:Zq8-very-secret-PW-77@db.internal:5432/airflow"
SECRET_FERNET = "dGhpcy1pcy1hLWZlcm5ldC1rZXktdGVzdC12YWx1ZSE="  # 32 bytes, as Fernet requires
SECRET_JWT = "jwt-Secret-Value-For-Tests-0123456789abcdef"
SECRET_API_KEY = "api-Secret-Key-For-Tests-0123456789abcdef"
SECRET_ADMIN = "admin-Password-For-Tests-0123456789"
# The default provider must update ConfigMaps and Secrets in place (the stack program requires it).
PROVIDER_FLAGS = {"kubernetes:enableConfigMapMutable": "true", "kubernetes:enableSecretMutable": "true"}
RESOURCE_GROUP_PREFIX = "kubernetes:"


def stack_config(fernet: bool = False, **overrides: Any) -> tuple[dict[str, str], list[str]]:
    """(config with full keys, secret keys) as the Pulumi CLI would pass them.

    ``fernet=True`` sets all four optional secrets (Fernet key, JWT secret, [api] secret_key, the
    simple auth manager's Admin password) from config instead of letting the platform generate them.
    """
    config = {f"{PROJECT}:databaseUrl": SECRET_DB_URL, **PROVIDER_FLAGS}
    secret_keys = [f"{PROJECT}:databaseUrl"]
    if fernet:
        for key, value in (
            ("fernetKey", SECRET_FERNET),
            ("jwtSecret", SECRET_JWT),
            ("apiSecretKey", SECRET_API_KEY),
            ("adminPassword", SECRET_ADMIN),
        ):
            config[f"{PROJECT}:{key}"] = value
            secret_keys.append(f"{PROJECT}:{key}")
    for key, value in overrides.items():
        raw = to_raw(value)
        assert raw is not None
        config[f"{PROJECT}:{key}"] = raw
    return config, secret_keys


def run_stack(fernet: bool = False, **overrides: Any) -> Evaluation:
    config, secret_keys = stack_config(fernet=fernet, **overrides)
    return evaluate(config, secret_keys=secret_keys)


@pytest.fixture
def stack() -> Callable[..., Evaluation]:
    """``stack(**overrides)`` -> Evaluation of the real stack program under mocks."""
    return run_stack


@pytest.fixture(scope="module")
def default_eval() -> Evaluation:
    return run_stack()


@pytest.fixture(scope="module")
def karpenter_eval() -> Evaluation:
    """The defaults with Karpenter node pools (the default backend, none, creates no pool objects)."""
    return run_stack(nodePoolBackend="karpenter")


@pytest.fixture(scope="module")
def etl_eval() -> Evaluation:
    """A platform whose names differ from the templates' placeholder names (Karpenter pools)."""
    return run_stack(platformName="etl", namespace="etl-jobs", fernet=True, nodePoolBackend="karpenter")


def objects(evaluation: Evaluation, kind: str) -> list[dict[str, Any]]:
    """The normalized manifests of one Pulumi kind (Deployment, NodePool, NodePatch...)."""
    return [m.obj for m in manifests(evaluation) if m.kind == kind]


def one(evaluation: Evaluation, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [obj for obj in objects(evaluation, kind) if name is None or obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def by_file(evaluation: Evaluation) -> dict[str, Manifest]:
    return {m.file_name: m for m in manifests(evaluation)}
