"""Read airflow.cfg (plus ``AIRFLOW__KUBERNETES__*`` environment overrides) into ExecutorConfig.

Rules, in the order they apply:

1. The file is INI as Airflow writes it, without interpolation.  Duplicate sections or keys are
   errors (configparser's strict mode), not "last one wins".
2. ``[kubernetes]`` and its Airflow 2.5+ name ``[kubernetes_executor]`` are one section; a key
   set in both is an error.  ``[core] executor`` must name the KubernetesExecutor.  Other
   sections and other ``[core]`` keys belong to Airflow and are ignored.
3. Environment variables ``AIRFLOW__KUBERNETES__<KEY>`` / ``AIRFLOW__KUBERNETES_EXECUTOR__<KEY>``
   override the file, as in Airflow.
4. Unknown keys are errors with a did-you-mean; Airflow keys this executor does not implement
   are errors that say why.
5. ``[kubernetes_tier:<name>]`` sections define tiers; without any, the seed's table applies.
6. Cross-field rules (request <= limit, N_min <= N_max, ...) run last.

Every error is a :class:`ConfigError` naming source (file or env var), section, key and value.
"""

from __future__ import annotations

import configparser
import difflib
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_k8s.executor.contract import config_keys, k8snames, quantity
from airflow_k8s.executor.contract.config import ExecutorConfig, Tier
from airflow_k8s.executor.contract.errors import ConfigError

SECTIONS = ("kubernetes", "kubernetes_executor")
TIER_PREFIX = "kubernetes_tier:"
_ENV_PREFIXES = ("AIRFLOW__KUBERNETES_EXECUTOR__", "AIRFLOW__KUBERNETES__")
_KEYS = {k.name: k for k in config_keys.KUBERNETES_KEYS}
_TIER_KEYS = {k.name: k for k in config_keys.TIER_KEYS}
_IMAGE_PARTS = ("worker_container_repository", "worker_container_tag")


@dataclass(frozen=True)
class _Raw:
    """One raw setting and where it came from."""

    value: str
    source: str
    section: str


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> ExecutorConfig:
    """Load and validate the airflow.cfg at ``path``; ``environ`` defaults to ``os.environ``."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", source=source) from exc
    return parse_config(text, source=source, environ=environ)


def parse_config(
    text: str, *, source: str = "<airflow.cfg>", environ: Mapping[str, str] | None = None
) -> ExecutorConfig:
    """Parse airflow.cfg ``text``; see the module docstring for the rules."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, default_section="\x00none")
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(f"not a valid airflow.cfg: {exc.message}", source=source) from exc
    env = os.environ if environ is None else environ

    values: dict[str, Any] = {}
    origin: dict[str, _Raw] = {}
    executor = _core_executor(parser, source, env)
    if executor is not None:
        values["executor"] = executor
    raw = _kubernetes_settings(parser, source, env)
    for key, setting in raw.items():
        origin[key] = setting
        values[key] = _parse_key(key, setting)
    _combine_image_parts(raw, values, origin)
    tiers = _tiers(parser, source)
    if tiers:
        values["tiers"] = tiers
    config = ExecutorConfig(**values)
    _check_cross_fields(config, origin, source)
    return config


def _core_executor(parser: configparser.ConfigParser, source: str, env: Mapping[str, str]) -> str | None:
    name = "AIRFLOW__CORE__EXECUTOR"
    if name in env:
        value, where = env[name].strip(), f"env:{name}"
    elif parser.has_option("core", "executor"):
        value, where = parser.get("core", "executor").strip(), source
    else:
        return None
    entries = [entry.strip().rsplit(".", 1)[-1] for entry in value.split(",")]
    if "KubernetesExecutor" not in entries:
        raise ConfigError(
            "this platform runs the KubernetesExecutor; set executor = KubernetesExecutor",
            source=where,
            section="core",
            key="executor",
            value=value,
        )
    return value


def _kubernetes_settings(parser: configparser.ConfigParser, source: str, env: Mapping[str, str]) -> dict[str, _Raw]:
    raw: dict[str, _Raw] = {}
    for section in SECTIONS:
        if not parser.has_section(section):
            continue
        for key, value in parser.items(section):
            _accept(raw, key, _Raw(value, source, section), from_env=False)
    for name in sorted(env):
        for prefix in _ENV_PREFIXES:
            if name.startswith(prefix):
                section = prefix[len("AIRFLOW__") : -2].lower()
                _accept(raw, name[len(prefix) :].lower(), _Raw(env[name], f"env:{name}", section), from_env=True)
                break
    return raw


def _accept(raw: dict[str, _Raw], key: str, setting: _Raw, *, from_env: bool) -> None:
    where = {"source": setting.source, "section": setting.section, "key": key, "value": setting.value}
    if key in config_keys.UNSUPPORTED:
        raise ConfigError(f"Airflow setting not supported by this executor: {config_keys.UNSUPPORTED[key]}", **where)
    target = config_keys.ALIASES.get(key, key)
    if target not in _KEYS and target not in _IMAGE_PARTS:
        raise ConfigError(f"unknown key{_did_you_mean(key, [*_KEYS, *config_keys.ALIASES])}", **where)
    previous = raw.get(target)
    if previous is not None and not from_env:
        raise ConfigError(
            f"set twice: also in {previous.source} [{previous.section}] (as {target!r} or an alias)", **where
        )
    raw[target] = setting


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parse_key(key: str, setting: _Raw, table: Mapping[str, config_keys.Key] = _KEYS) -> Any:
    if key in _IMAGE_PARTS:
        return config_keys.text(setting.value)
    try:
        return table[key].parse(setting.value)
    except ValueError as exc:
        raise ConfigError(
            str(exc), source=setting.source, section=setting.section, key=key, value=setting.value
        ) from exc


def _combine_image_parts(raw: dict[str, _Raw], values: dict[str, Any], origin: dict[str, _Raw]) -> None:
    """Airflow's worker_container_repository + worker_container_tag form of the image."""
    repository = values.pop("worker_container_repository", None)
    tag = values.pop("worker_container_tag", None)
    if repository is None and tag is None:
        return
    setting = raw.get("worker_container_repository") or raw["worker_container_tag"]
    where = {"source": setting.source, "section": setting.section}
    if "worker_container_image" in values:
        raise ConfigError(
            "give either worker_container_image or worker_container_repository/_tag, not both",
            key="worker_container_repository",
            **where,
        )
    if repository is None or tag is None:
        raise ConfigError(
            "worker_container_repository and worker_container_tag must be given together",
            key="worker_container_repository" if repository is None else "worker_container_tag",
            **where,
        )
    composed = f"{repository}:{tag}"
    values["worker_container_image"] = _parse_key(
        "worker_container_image", _Raw(composed, setting.source, setting.section)
    )
    origin["worker_container_image"] = setting


def _tiers(parser: configparser.ConfigParser, source: str) -> tuple[Tier, ...]:
    tiers = []
    for section in parser.sections():
        if not section.startswith("kubernetes_tier"):
            continue
        name = section[len(TIER_PREFIX) :] if section.startswith(TIER_PREFIX) else ""
        if not name or not k8snames.is_dns1123_label(name):
            raise ConfigError(
                "tier sections are named [kubernetes_tier:<name>] with a DNS-1123 label name",
                source=source,
                section=section,
            )
        tiers.append(_tier(parser, source, section, name))
    return tuple(tiers)


def _tier(parser: configparser.ConfigParser, source: str, section: str, name: str) -> Tier:
    values: dict[str, Any] = {}
    for key, value in parser.items(section):
        if key not in _TIER_KEYS:
            raise ConfigError(
                f"unknown tier key{_did_you_mean(key, list(_TIER_KEYS))}",
                source=source,
                section=section,
                key=key,
                value=value,
            )
        values[key] = _parse_key(key, _Raw(value, source, section), _TIER_KEYS)
    for required in ("request_cpu", "request_memory"):
        if required not in values:
            raise ConfigError("required tier key is missing", source=source, section=section, key=required)
    template = values.get("pod_template")
    if template is not None and (posixpath.basename(template) != template or template in (".", "..")):
        raise ConfigError(
            "pod_template is a file name inside pod_template_dir, not a path",
            source=source,
            section=section,
            key="pod_template",
            value=template,
        )
    return Tier(name=name, **values)


def _check_cross_fields(config: ExecutorConfig, origin: Mapping[str, _Raw], source: str) -> None:
    def fail(key: str, message: str, section: str = "kubernetes") -> None:
        setting = origin.get(key)
        raise ConfigError(
            message,
            source=setting.source if setting else source,
            section=setting.section if setting else section,
            key=key,
            value=getattr(config, key),
        )

    resource = _request_over_limit(config.default_requests(), config.default_limits())
    if resource is not None:
        fail(
            f"worker_resource_request_{resource}",
            f"request is greater than worker_resource_limit_{resource} = {config.default_limits()[resource]!r}",
        )
    if config.worker_pods_min > config.worker_pods_max:
        fail("worker_pods_min", f"N_min is greater than worker_pods_max = {config.worker_pods_max}")
    directory = posixpath.normpath(config.pod_template_dir)
    template = posixpath.normpath(config.pod_template_file)
    if posixpath.dirname(template) != directory:
        fail(
            "pod_template_file",
            f"the default template must be a file directly inside pod_template_dir = {config.pod_template_dir!r}",
        )
    if config.in_cluster and (config.config_file or config.cluster_context):
        key = "config_file" if config.config_file else "cluster_context"
        fail(key, "only used when in_cluster = False")
    names = [tier.name for tier in config.tiers]
    if config.default_tier not in names:
        fail("default_tier", f"no such tier (defined: {', '.join(names)})")
    for tier in config.tiers:
        _check_tier_limits(tier, source)


def _check_tier_limits(tier: Tier, source: str) -> None:
    limits = tier.limits()
    resource = _request_over_limit(tier.requests(), limits)
    if resource is not None:
        raise ConfigError(
            f"request is greater than limit_{resource} = {limits[resource]!r}",
            source=source,
            section=f"{TIER_PREFIX}{tier.name}",
            key=f"request_{resource}",
            value=tier.requests()[resource],
        )


def _request_over_limit(requests: Mapping[str, str], limits: Mapping[str, str]) -> str | None:
    """The first resource whose request exceeds its limit (compared by value), or None."""
    for resource, request in requests.items():
        if resource in limits and quantity.parse(request) > quantity.parse(limits[resource]):
            return resource
    return None
