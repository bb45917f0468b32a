"""No secret value reaches a ConfigMap, a plain output, a log line or the rendered directory."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from airflow_k8s.infra.components.secrets import fernet_from_base64
from airflow_k8s.infra.render.main import write_render
from airflow_k8s.infra.render.manifests import REDACTED, manifests
from airflow_k8s.infra.render.offline import RANDOM_BYTES, Evaluation, fake_random_bytes, is_secret_value, unwrap

from .conftest import SECRET_ADMIN, SECRET_API_KEY, SECRET_DB_URL, SECRET_FERNET, SECRET_JWT, objects, run_stack

SECRETS = (SECRET_DB_URL, SECRET_FERNET, SECRET_JWT, SECRET_API_KEY, SECRET_ADMIN)
GENERATED = tuple(
    fake_random_bytes(f"airflow-secrets-{key}")["base64"] for key in ("jwt-secret", "api-secret-key", "admin-password")
)


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return run_stack(fernet=True)


def _text(value: object) -> str:
    return json.dumps(unwrap(value), default=str)


def test_secret_values_enter_only_the_secret_and_stay_wrapped(evaluation: Evaluation) -> None:
    (secret,) = evaluation.of_type("kubernetes:core/v1:Secret")
    string_data = secret.inputs["stringData"]
    assert is_secret_value(string_data)  # marked secret for the provider and the state
    assert unwrap(string_data) == {
        "database-url": SECRET_DB_URL,
        "fernet-key": SECRET_FERNET,
        "jwt-secret": SECRET_JWT,
        "api-secret-key": SECRET_API_KEY,
        "admin-password": SECRET_ADMIN,
    }
    # all four were given: no value generated, only the rollout salt (rollout.py)
    assert [r.name for r in evaluation.of_type(RANDOM_BYTES)] == ["airflow-secrets-rollout-salt"]
    for resource in evaluation.resources:
        if resource is secret:
            continue
        text = _text(resource.inputs)
        assert not any(value in text for value in SECRETS), resource.urn


def test_config_maps_hold_no_secret(evaluation: Evaluation) -> None:
    config_maps = objects(evaluation, "ConfigMap")
    assert len(config_maps) == 2
    for config_map in config_maps:
        text = json.dumps(config_map)
        assert not any(value in text for value in SECRETS)
        assert "postgresql://" not in text  # not even the shape of the URL


def test_outputs_are_plain_and_hold_no_secret(evaluation: Evaluation) -> None:
    assert evaluation.outputs and all(not value.secret for value in evaluation.outputs.values())
    text = json.dumps(evaluation.plain_outputs())
    assert not any(value in text for value in SECRETS)


def test_rendered_directory_holds_no_secret(evaluation: Evaluation, tmp_path: Path) -> None:
    rendered = manifests(evaluation)
    assert all(not m.leaks for m in rendered)
    write_render(rendered, evaluation, tmp_path)
    files = [p for p in tmp_path.iterdir() if p.suffix in (".yaml", ".json") and not p.name.startswith(".")]
    assert len(files) == len(rendered) + 1
    for path in files:
        text = path.read_text()
        assert not any(value in text for value in SECRETS), path.name
    secret_file = next(p for p in files if p.name.startswith("secret-"))
    for key in ("database-url", "fernet-key", "jwt-secret", "api-secret-key"):
        assert f"{key}: {REDACTED}" in secret_file.read_text()


def test_unset_optional_secrets_are_generated_once_and_stay_secret(default_eval: Evaluation) -> None:
    """fernetKey, jwtSecret, apiSecretKey unset: RandomBytes children (stable in state), never outside the Secret."""
    generated = {r.name: r for r in default_eval.of_type(RANDOM_BYTES) if not r.name.endswith("rollout-salt")}
    keys = ("fernet-key", "jwt-secret", "api-secret-key", "admin-password")
    assert set(generated) == {f"airflow-secrets-{key}" for key in keys}
    assert all(r.inputs == {"length": 32} for r in generated.values())
    (secret,) = default_eval.of_type("kubernetes:core/v1:Secret")
    assert is_secret_value(secret.inputs["stringData"])
    values = unwrap(secret.inputs["stringData"])
    fernet = values["fernet-key"]
    assert fernet == fernet_from_base64(fake_random_bytes("airflow-secrets-fernet-key")["base64"])
    assert len(base64.urlsafe_b64decode(fernet)) == 32 and "+" not in fernet and "/" not in fernet  # a Fernet key
    assert (values["jwt-secret"], values["api-secret-key"], values["admin-password"]) == GENERATED
    for resource in default_eval.resources:
        if resource is not secret and resource.type != RANDOM_BYTES:
            assert not any(value in _text(resource.inputs) for value in (*GENERATED, fernet)), resource.urn
    assert not any(value in json.dumps(default_eval.plain_outputs()) for value in (*GENERATED, fernet))


def test_program_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    run_stack(fernet=True, nodePoolBackend="existing-nodes")  # logs a warning for the empty gpu pool
    assert "node pool 'gpu' has no nodes" in caplog.text
    assert not any(value in caplog.text for value in SECRETS)


def test_a_leak_is_detected(stack) -> None:
    """The leak detector itself: a secret smuggled into a ConfigMap is reported and redacted."""
    import pulumi
    import pulumi_kubernetes as k8s

    from airflow_k8s.infra.render.offline import evaluate

    def leaky() -> None:
        k8s.core.v1.ConfigMap("leak", metadata={"name": "leak"}, data={"url": pulumi.Output.secret("s3cr3t")})

    (manifest,) = manifests(evaluate({}, program=leaky))
    # The SDK marks the whole map secret once one value is; the leak is reported at that level.
    assert manifest.leaks == ["data"]
    assert manifest.obj["data"] == REDACTED
