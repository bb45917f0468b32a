"""The stack program: read the stack config once, build the platform, export its outputs.

This is the only place that reads Pulumi config.  It collects the raw ``airflow-k8s:*`` values
(plain keys with ``Config.get``, secrets only with ``Config.require_secret``), validates them
with :func:`airflow_k8s.infra.config.stack_config.parse_stack_config` (which reports every bad key at once, unknown
keys included), loads the pod templates from the project's ``pod_templates/`` with the
executor's :class:`~airflow_k8s.executor.pods.templates.TemplateStore`, and instantiates
:class:`~airflow_k8s.infra.components.platform.AirflowK8sPlatform` with the default Kubernetes provider (configure it
the usual way: ``kubernetes:context`` / ``KUBECONFIG``).

The Kubernetes provider must update ConfigMaps and Secrets in place: by default pulumi-kubernetes
*replaces* them on a data change, and with the platform's pinned names a replacement deletes the
object before creating it again - a pod starting in between (a task pod mounting airflow.cfg, a
control-plane pod reading the Secret) fails.  The program therefore requires
``kubernetes:enableConfigMapMutable`` and ``kubernetes:enableSecretMutable`` to be ``true`` in the
stack config (or the provider's ``PULUMI_K8S_ENABLE_*_MUTABLE`` environment variables), and says
so, naming the keys, when they are not - first, before any other check; the component checks its
provider again (:mod:`airflow_k8s.infra.components.provider`), for programs that are not this one.
The offline render reads the same settings to tell
"update" from "replace" (:mod:`airflow_k8s.infra.render.replacement`).

The same function runs under ``pulumi up``/``preview`` (via the root ``__main__.py``) and under
mocks for tests and the offline render (:mod:`airflow_k8s.infra.render.offline`), so what is reviewed offline is
what gets deployed.  Configuration errors surface as :class:`pulumi.RunError`: one clean message,
no traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi

from airflow_k8s.executor.contract.errors import ExecutorError
from airflow_k8s.executor.pods.templates import TemplateStore
from airflow_k8s.infra.components.configmaps import DEFAULT_TEMPLATE
from airflow_k8s.infra.components.platform import AirflowK8sPlatform, PlatformArgs, PreflightError
from airflow_k8s.infra.components.provider import default_provider_problems
from airflow_k8s.infra.components.secrets import PlatformSecrets
from airflow_k8s.infra.config.secret_values import secret_problems
from airflow_k8s.infra.config.stack_config import (
    PROJECT,
    SECRET_KEYS,
    Problem,
    StackConfig,
    StackConfigError,
    parse_stack_config,
)

PROJECT_DIR = Path(__file__).resolve().parent.parent
OPTIONAL_SECRETS = ("fernetKey", "jwtSecret", "apiSecretKey", "adminPassword")


def configured_keys() -> set[str]:
    """Names (without ``airflow-k8s:``) of every project config key the stack sets."""
    from pulumi.runtime import config as runtime_config  # the SDK has no public "list keys"

    everything = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{PROJECT}:"
    return {key[len(prefix) :] for key in everything if key.startswith(prefix)}


def secret_value(key: str) -> str | None:
    """The plaintext of secret config ``key``, for :func:`secret_problems` only (never logged, never an output)."""
    from pulumi.runtime import config as runtime_config  # Config.get() of a secret warns; this is the same value

    return runtime_config.get_config(f"{PROJECT}:{key}")


def read_config() -> tuple[StackConfig, PlatformSecrets]:
    """The validated stack config and the secret Outputs; raises StackConfigError."""
    config = pulumi.Config(PROJECT)
    present = configured_keys()
    raw = {key: config.get(key) for key in sorted(present) if key not in SECRET_KEYS}
    stack = parse_stack_config(raw, secrets_set={key for key in SECRET_KEYS if key in present})
    problems = secret_problems({key: secret_value(key) for key in SECRET_KEYS if key in present})
    if problems:
        raise StackConfigError(problems)
    optional = {key: config.require_secret(key) if key in present else None for key in OPTIONAL_SECRETS}
    secrets = PlatformSecrets(
        database_url=config.require_secret("databaseUrl") if "databaseUrl" in present else None,
        fernet_key=optional["fernetKey"],
        jwt_secret=optional["jwtSecret"],
        api_secret_key=optional["apiSecretKey"],
        admin_password=optional["adminPassword"],
    )
    return stack, secrets


def load_templates(stack: StackConfig) -> dict[str, dict[str, Any]]:
    """Every template of the stack's template directory, parsed and validated; errors name ``podTemplatesDir``."""
    directory = Path(stack.templates_dir)
    if not directory.is_absolute():
        directory = PROJECT_DIR / directory
    default = DEFAULT_TEMPLATE
    try:
        store = TemplateStore(directory, logical_dir=stack.platform.executor.pod_template_dir)
        templates = store.load_all()
    except (ExecutorError, OSError) as exc:
        reason = f"cannot publish the pod templates of {directory}: {exc}"
        raise StackConfigError([Problem("podTemplatesDir", stack.templates_dir, reason)]) from exc
    if default not in templates:
        reason = f"cannot publish the pod templates of {directory}: it holds no {default} (found: {sorted(templates)})"
        raise StackConfigError([Problem("podTemplatesDir", stack.templates_dir, reason)])
    return templates


def main() -> AirflowK8sPlatform:
    """Build the platform from the stack config and export its outputs."""
    try:
        problems = default_provider_problems()  # before reading config: the component checks it again
        if problems:
            lines = "\n".join(f"  - {p}" for p in problems)
            raise pulumi.RunError(f"the Kubernetes provider is not set up for this platform:\n{lines}")
        stack, secrets = read_config()
        for warning in stack.warnings:
            pulumi.log.warn(warning)
        templates = load_templates(stack)
        platform = AirflowK8sPlatform(stack.platform_name, PlatformArgs(stack.platform, templates, secrets))
    except (StackConfigError, PreflightError, ExecutorError) as exc:  # RunError passes through
        raise pulumi.RunError(str(exc)) from exc
    for key, value in platform.outputs().items():
        pulumi.export(key, value)
    return platform
