"""``render --check``: validate a directory of rendered manifests, offline.

Every file is checked on its own merits (so a hand-edited or broken file is caught too):

* **schema** - strict validation against the pinned Kubernetes version
  (:func:`airflow_k8s.executor.pods.schema.validate_manifest`); custom resources get the basic
  checks there plus their own: karpenter.sh NodePool
  (:func:`airflow_k8s.infra.components.nodepools.nodepool_problems`), prometheus-operator
  PodMonitor strictly against the operator's CRD schema (:mod:`airflow_k8s.infra.render.crd_schemas`);
* **pss** / **hardening** - every object with a pod (Deployment...) must pass Pod Security
  "restricted" and the platform's hardening policy; a pod may mount an API token only when its
  ServiceAccount explicitly sets ``automountServiceAccountToken: true`` in the same render;
* **templates** - every pod template published in a ConfigMap labelled
  ``airflow-k8s/pod-templates`` is parsed like the executor parses it (schema, restricted) and
  must pass the hardening policy without a token;
* **airflow.cfg** - a ConfigMap key ``airflow.cfg`` must load with the executor's loader;
* **namespace** - Pod Security labels enforce/audit/warn = restricted at the pinned version;
* **secrets** - Secret values must be redacted in the render.

checkov runs separately (:mod:`airflow_k8s.infra.render.checkov`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from airflow_k8s.executor.contract.config_loader import parse_config
from airflow_k8s.executor.contract.errors import ExecutorError
from airflow_k8s.executor.pods import schema, security
from airflow_k8s.executor.pods.templates import parse_template
from airflow_k8s.infra.components.configmaps import AIRFLOW_CFG_KEY
from airflow_k8s.infra.components.names import TEMPLATES_LABEL
from airflow_k8s.infra.components.namespace import pss_labels
from airflow_k8s.infra.components.nodepools import nodepool_problems
from airflow_k8s.infra.render.crd_schemas import crd_problems
from airflow_k8s.infra.render.manifests import REDACTED


@dataclass(frozen=True)
class Finding:
    file: str
    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.check}] {self.message}"


def load_directory(directory: Path) -> list[tuple[str, Any]]:
    """(file name, parsed YAML) of every ``*.yaml`` in ``directory``, sorted."""
    out = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            out.append((path.name, yaml.safe_load(path.read_text(encoding="utf-8"))))
        except yaml.YAMLError as exc:
            out.append((path.name, exc))
    return out


def check_directory(directory: Path) -> list[Finding]:
    return check_objects(load_directory(directory))


def check_objects(objects: Iterable[tuple[str, Any]]) -> list[Finding]:
    objects = list(objects)
    token_accounts = {
        (_meta(obj).get("namespace"), _meta(obj).get("name"))
        for _, obj in objects
        if isinstance(obj, Mapping)
        and obj.get("kind") == "ServiceAccount"
        and obj.get("automountServiceAccountToken") is True
    }
    findings: list[Finding] = []
    for file, obj in objects:
        if not isinstance(obj, dict):
            findings.append(Finding(file, "yaml", f"not a Kubernetes object: {obj}"))
            continue
        findings.extend(Finding(file, check, message) for check, message in _check_one(obj, token_accounts))
    return findings


def _check_one(obj: dict[str, Any], token_accounts: set[tuple[Any, Any]]) -> Iterable[tuple[str, str]]:
    api_version, kind = str(obj.get("apiVersion", "")), obj.get("kind")
    group = schema.api_group(api_version)
    custom = not schema.is_builtin_group(group)
    try:
        schema.validate_manifest(obj, where=str(kind), allow_custom=custom)
    except ExecutorError as exc:
        yield "schema", str(exc)
    if custom and kind == "NodePool":
        yield from (("nodepool", problem) for problem in nodepool_problems(obj))
    if custom:
        yield from (("crd", f"{kind}: {problem}") for problem in crd_problems(obj) or [])
    if schema.find_pod_template(obj) is not None:
        yield from (("pss", v) for v in security.restricted_violations(obj))
        pod = schema.find_pod_template(obj)
        assert pod is not None
        account = (_meta(obj).get("namespace"), pod.spec.get("serviceAccountName") or "default")
        allow = account in token_accounts
        yield from (("hardening", v) for v in security.hardening_violations(obj, allow_token=allow))
    if kind == "Namespace":
        labels = _meta(obj).get("labels") or {}
        for key, value in pss_labels().items():
            if labels.get(key) != value:
                yield "namespace", f"label {key} must be {value!r}, found {labels.get(key)!r}"
    if kind == "ConfigMap":
        data = obj.get("data") or {}
        if (_meta(obj).get("labels") or {}).get(TEMPLATES_LABEL) == "true":
            for key, text in sorted(data.items()):
                yield from (("templates", m) for m in _template_problems(key, text))
        if AIRFLOW_CFG_KEY in data:
            try:
                parse_config(data[AIRFLOW_CFG_KEY], source=AIRFLOW_CFG_KEY, environ={})
            except ExecutorError as exc:
                yield "airflow.cfg", str(exc)
    if kind == "Secret":
        for field in ("data", "stringData"):
            for key, value in (obj.get(field) or {}).items():
                if value != REDACTED:
                    yield "secrets", f"{field}.{key} is not redacted"


def _template_problems(key: str, text: str) -> list[str]:
    try:
        pod = parse_template(text, source=key)
    except ExecutorError as exc:
        return [str(exc)]
    return [f"{key}: {v}" for v in security.hardening_violations(pod, allow_token=False)]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}
