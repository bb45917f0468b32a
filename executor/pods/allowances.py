"""The effective allow-lists of the task pod policy: the operator's settings plus the config's keys.

What the platform already uses is allowed by default - the node selectors, tolerations, service
accounts, priority classes, ConfigMaps, claims and image registries of every template in the
template directory and of the ``worker_*`` keys - and the ``task_allowed_*`` keys
(:class:`~airflow_k8s.executor.contract.task_policy.TaskPodPolicy`) add to that.  Secrets are the
exception: none are derived, because the secrets a template hands its own pods (the database URL)
are not secrets a task should be able to put anywhere else.

The template-derived part is computed lazily (only a task that changes placement, volumes or
images needs it) and skips templates that fail to load: a broken template elsewhere in the
directory fails its own tasks, not every task.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from airflow_k8s.executor.contract import k8snames
from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.errors import TemplateError
from airflow_k8s.executor.contract.parsers import DOCKER_HUB, image_repository
from airflow_k8s.executor.contract.task_policy import TaskPodPolicy
from airflow_k8s.executor.pods.templates import TemplateStore

TemplateSource = Callable[[], Iterable[Mapping[str, Any]]]


def store_templates(store: TemplateStore) -> TemplateSource:
    """Every template of ``store`` that loads (see the module docstring)."""

    def load() -> Iterator[Mapping[str, Any]]:
        try:
            names = store.names()
        except TemplateError:
            return
        for name in names:
            try:
                yield store.load(name)
            except TemplateError:
                continue

    return load


class Allowances:
    """What a task may use: ``policy`` lists plus the names the operator's templates and config use."""

    def __init__(self, config: ExecutorConfig, templates: TemplateSource) -> None:
        self.config = config
        self.policy: TaskPodPolicy = config.task_policy()
        self._templates = templates

    @functools.cached_property
    def _specs(self) -> list[Mapping[str, Any]]:
        return [_mapping(doc.get("spec")) for doc in self._templates()]

    def namespace_allowed(self, namespace: object) -> bool:
        allowed = self.config.namespaces()
        if allowed is None:
            return isinstance(namespace, str) and namespace not in k8snames.SYSTEM_NAMESPACES
        return namespace in allowed

    @functools.cached_property
    def service_accounts(self) -> frozenset[str]:
        found = {s.get("serviceAccountName") for s in self._specs} | {self.config.worker_service_account_name}
        return frozenset(_names(found) | set(self.policy.service_accounts))

    @functools.cached_property
    def priority_classes(self) -> frozenset[str]:
        found = {s.get("priorityClassName") for s in self._specs} | {self.config.worker_priority_class}
        return frozenset(_names(found) | set(self.policy.priority_classes))

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self.policy.secrets)

    @functools.cached_property
    def config_maps(self) -> frozenset[str]:
        found: set[object] = set()
        for spec in self._specs:
            for volume in _list(spec.get("volumes")):
                found.add(_mapping(_mapping(volume).get("configMap")).get("name"))
                for source in _list(_mapping(_mapping(volume).get("projected")).get("sources")):
                    found.add(_mapping(_mapping(source).get("configMap")).get("name"))
            for container in _containers(spec):
                for item in _list(container.get("env")):
                    found.add(_mapping(_mapping(_mapping(item).get("valueFrom")).get("configMapKeyRef")).get("name"))
                for item in _list(container.get("envFrom")):
                    found.add(_mapping(_mapping(item).get("configMapRef")).get("name"))
        return frozenset(_names(found) | set(self.policy.config_maps))

    @functools.cached_property
    def claims(self) -> frozenset[str]:
        found = {
            _mapping(_mapping(volume).get("persistentVolumeClaim")).get("claimName")
            for spec in self._specs
            for volume in _list(spec.get("volumes"))
        }
        return frozenset(_names(found) | set(self.policy.claims))

    @functools.cached_property
    def registries(self) -> tuple[str, ...]:
        images = [self.config.worker_container_image] + [c.get("image") for s in self._specs for c in _containers(s)]
        found = []
        for image in images:
            if isinstance(image, str):
                try:
                    found.append(image_repository(image).split("/", 1)[0])
                except ValueError:
                    continue
        return tuple(sorted(set(found) | set(self.policy.registries)))

    @functools.cached_property
    def node_selectors(self) -> frozenset[tuple[str, str]]:
        pairs = {(k, v) for s in self._specs for k, v in _mapping(s.get("nodeSelector")).items()}
        pairs |= set(self.config.worker_node_selector)
        pairs |= {(key, value) for key, values in self.policy.node_selectors for value in values}
        return frozenset(pairs)

    @functools.cached_property
    def tolerations(self) -> tuple[Mapping[str, Any], ...]:
        found: list[Mapping[str, Any]] = [_mapping(t) for s in self._specs for t in _list(s.get("tolerations"))]
        found += [t.to_k8s() for t in (*self.config.worker_tolerations, *self.policy.tolerations)]
        return tuple(found)

    def describe_registries(self) -> str:
        shown = [f"{r} (Docker Hub)" if r == DOCKER_HUB else r for r in self.registries]
        return ", ".join(shown) or "none"


def _names(values: Iterable[object]) -> set[str]:
    return {value for value in values if isinstance(value, str) and value}


def _containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for list_name in ("containers", "initContainers"):
        for container in _list(spec.get(list_name)):
            yield _mapping(container)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
