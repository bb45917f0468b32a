"""What rolls which control-plane pods: config digests per role and a keyed HMAC of the Secret keys each reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s.infra.components.rollout import CONFIG_HASH_ANNOTATION, SECRETS_HMAC_ANNOTATION, secrets_digest
from airflow_k8s.infra.render.manifests import manifests
from airflow_k8s.infra.render.offline import Evaluation, evaluate, fake_random_bytes
from airflow_k8s.infra.render.replacement import ProviderFlags, provider_force_new, replacing_changes

from .conftest import (
    SECRET_ADMIN,
    SECRET_API_KEY,
    SECRET_DB_URL,
    SECRET_FERNET,
    SECRET_JWT,
    objects,
    one,
    run_stack,
    stack_config,
)

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("scheduler", "api-server", "dag-processor", "triggerer")


def annotations(evaluation: Evaluation) -> dict[str, dict[str, str]]:
    return {
        d["metadata"]["name"].removeprefix("airflow-"): d["spec"]["template"]["metadata"]["annotations"]
        for d in objects(evaluation, "Deployment")
    }


def rolled(before: Evaluation, after: Evaluation, annotation: str) -> set[str]:
    old, new = annotations(before), annotations(after)
    return {role for role in ROLES if old[role][annotation] != new[role][annotation]}


@pytest.fixture(scope="module")
def base() -> Evaluation:
    return run_stack(fernet=True)


def test_an_airflow_cfg_change_rolls_every_role_and_nothing_else_does(base: Evaluation) -> None:
    assert annotations(run_stack(fernet=True)) == annotations(base)  # deterministic
    for change in ({"workerPodsMax": 6}, {"workerImage": "apache/airflow:3.3.1"}, {"apiBaseUrl": "https://af.example"}):
        assert rolled(base, run_stack(fernet=True, **change), CONFIG_HASH_ANNOTATION) == set(ROLES), change
    assert rolled(base, run_stack(fernet=True, quotaPods=30), CONFIG_HASH_ANNOTATION) == set()  # no pod reads it


def test_a_template_only_change_restarts_only_the_roles_that_load_templates(base: Evaluation, tmp_path: Path) -> None:
    """The scheduler (it builds task pods) and the dag-processor (the executor's cluster policy checks each
    task's pod at parse time) mount the templates; the api-server and the triggerer do not, and keep running."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "pod_templates", templates)
    light = templates / "light_task.yaml"
    light.write_text(light.read_text().replace("metadata:\n", "metadata:\n  annotations:\n    team: data\n", 1))
    after = run_stack(fernet=True, podTemplatesDir=str(templates))
    readers = {
        name.removeprefix("airflow-")
        for name, spec in ((d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in objects(base, "Deployment"))
        if any(v["name"] == "pod-templates" for v in spec["volumes"])
    }
    assert readers == {"scheduler", "dag-processor"}
    assert rolled(base, after, CONFIG_HASH_ANNOTATION) == readers
    assert rolled(base, after, SECRETS_HMAC_ANNOTATION) == set()


@pytest.mark.parametrize(
    ("key", "value", "readers"),
    [
        ("jwtSecret", "a-new-jwt-secret-after-rotation-0123456789", {"scheduler", "api-server"}),
        ("apiSecretKey", "a-new-api-secret-key-after-rotation-012345", {"api-server", "triggerer"}),
        ("fernetKey", base64.urlsafe_b64encode(b"n" * 32).decode(), set(ROLES)),
        ("databaseUrl", "postgresql://airflow:rotated-PW@db.internal:5432/airflow", set(ROLES)),
    ],
)
def test_a_secret_rotation_rolls_exactly_the_pods_that_read_it(base: Evaluation, key, value, readers) -> None:
    config, secret_keys = stack_config(fernet=True)
    config[f"airflow-k8s:{key}"] = value
    after = evaluate(config, secret_keys=secret_keys)
    assert rolled(base, after, SECRETS_HMAC_ANNOTATION) == readers
    assert rolled(base, after, CONFIG_HASH_ANNOTATION) == set()


def _migration(evaluation: Evaluation) -> dict[str, Any]:
    return dict(one(evaluation, "Job", "airflow-db-migrate"))


@pytest.mark.parametrize(
    ("change", "migrates_again"),
    [
        ({"databaseUrl": "postgresql://airflow:pw@new-db.internal:5432/airflow"}, True),  # a new database
        ({"fernetKey": base64.urlsafe_b64encode(b"n" * 32).decode()}, True),
        ({"jwtSecret": "a-new-jwt-secret-after-rotation-0123456789"}, False),
        ({"apiSecretKey": "a-new-api-secret-key-after-rotation-012345"}, False),
        ({"workerPodsMax": "6"}, False),  # airflow.cfg
    ],
)
def test_the_migration_job_is_replaced_exactly_when_a_secret_it_reads_changes(
    base: Evaluation, change: dict[str, Any], migrates_again: bool
) -> None:
    """A new database URL is migrated before the roles roll onto it (their check-migrations would wait on an empty
    schema); what the migration does not read never replaces the immutable Job."""
    config, secret_keys = stack_config(fernet=True)
    config.update({f"airflow-k8s:{key}": value for key, value in change.items()})
    old, new = _migration(base), _migration(evaluate(config, secret_keys=secret_keys))
    assert set(old["spec"]["template"]["metadata"]["annotations"]) == {SECRETS_HMAC_ANNOTATION}
    changed = replacing_changes(old, new, provider_force_new(old, ProviderFlags()))
    assert bool(changed) is migrates_again, changed
    if migrates_again:
        assert changed == [f".spec.template.metadata.annotations.{SECRETS_HMAC_ANNOTATION}"]


def _salt(evaluation: Evaluation) -> str:
    (salt,) = [r for r in evaluation.of_type("random:index/randomBytes:RandomBytes") if r.name.endswith("rollout-salt")]
    return fake_random_bytes(salt.name)["base64"]


def test_the_annotation_is_a_keyed_hmac_that_reveals_no_value(base: Evaluation) -> None:
    api = annotations(base)["api-server"][SECRETS_HMAC_ANNOTATION]
    values = {
        "database-url": SECRET_DB_URL,
        "fernet-key": SECRET_FERNET,
        "jwt-secret": SECRET_JWT,
        "api-secret-key": SECRET_API_KEY,
        "admin-password": SECRET_ADMIN,  # its init container writes the simple auth manager's passwords file
    }
    assert api == secrets_digest(_salt(base), list(values.items()))
    # not a plain hash of any value (a low-entropy password would be brute-forced from it) ...
    plain = {hashlib.sha256(v.encode()).hexdigest() for v in values.values()}
    plain |= {hmac.new(b"", v.encode(), hashlib.sha256).hexdigest() for v in values.values()}
    texts = "\n".join(m.text() for m in manifests(base))
    assert not any(h in texts for h in plain)
    assert not any(v in texts for v in values.values())
    # ... and the same values under another stack's salt give another digest
    assert secrets_digest("another-stack-salt", list(values.items())) != api


def test_the_salt_is_a_secret_generated_once_per_stack(base: Evaluation) -> None:
    (salt,) = [r for r in base.of_type("random:index/randomBytes:RandomBytes") if r.name.endswith("rollout-salt")]
    assert salt.inputs == {"length": 32}
    assert salt.parent_name == "airflow-secrets"


def test_hmac_annotations_are_plain_values_not_secret_outputs(base: Evaluation) -> None:
    """A secret annotation would hide the whole Deployment spec in previews and fail the leak check."""
    for manifest in manifests(base):
        assert manifest.leaks == [], manifest.file_name
