"""Read the executor's settings (airflow.cfg, environment, or Airflow's own config) into ExecutorConfig.

Rules, in the order they apply:

1. Settings arrive as :class:`Setting` values from a source: an airflow.cfg file plus
   ``AIRFLOW__<SECTION>__<KEY>`` environment variables (:func:`parse_config`), or Airflow's
   configuration when the executor runs inside Airflow (``executor/airflow/config.py``: env vars,
   ``_cmd``/``_secret`` variants and secrets backends resolved by Airflow).  Both go through
   :func:`build_config`, so validation is the same.
2. ``[kubernetes_executor]`` is the section (Airflow 3 reads only that one); ``[kubernetes]`` is
   accepted as an alias.  A key set in both, at the same precedence, is an error; environment
   variables override the file, as in Airflow.
3. ``[core] executor`` must list this executor when it is set; ``[core] execution_api_server_url``
   is the URL task pods call; ``[workers] execution_api_retries`` / ``_retry_wait_min`` / ``_max``
   are what task pods get for retrying it.  Other sections and other ``[core]`` and ``[workers]``
   keys belong to Airflow.
4. Unknown keys are errors with a did-you-mean (Airflow ignores them silently, so a typo would
   otherwise do nothing); Airflow keys this executor cannot honour at a value are errors that
   say why; obsolete keys are accepted and ignored.
5. ``[kubernetes_tier:<name>]`` sections define tiers; without any, the seed's table applies.
6. Cross-field rules (request <= limit, N_min <= N_max, ...) run last
   (:mod:`~airflow_k8s.executor.contract.config_rules`), once every key parsed.

Every error is a :class:`ConfigError` naming source (file or env var), section, key and value;
all of them are reported at once (:class:`~airflow_k8s.executor.contract.errors.ConfigErrors`).
"""

from __future__ import annotations

import configparser
import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_k8s.executor.contract import config_keys, k8snames
from airflow_k8s.executor.contract.config import ExecutorConfig, Tier
from airflow_k8s.executor.contract.config_rules import TIER_PREFIX, cross_field_problems
from airflow_k8s.executor.contract.errors import ConfigError, raise_all

SECTION = "kubernetes_executor"
ALIAS_SECTION = "kubernetes"
SECTIONS = (SECTION, ALIAS_SECTION)
EXECUTOR_CLASS_NAME = "KubernetesPlatformExecutor"
_KEYS = {k.name: k for k in config_keys.KUBERNETES_KEYS}
_CORE_KEYS = {k.name: k for k in config_keys.CORE_KEYS}
_WORKERS_KEYS = {k.name: k for k in config_keys.WORKERS_KEYS}
_AIRFLOW_SECTIONS = {"core": _CORE_KEYS, "workers": _WORKERS_KEYS}  # sections shared with Airflow: only these keys
_TIER_KEYS = {k.name: k for k in config_keys.TIER_KEYS}
_IMAGE_PARTS = ("worker_container_repository", "worker_container_tag")
_ENV_SECTIONS = {"KUBERNETES_EXECUTOR": SECTION, "KUBERNETES": ALIAS_SECTION, "CORE": "core", "WORKERS": "workers"}


@dataclass(frozen=True)
class Setting:
    """One raw setting and where it came from; ``override`` marks an environment variable."""

    section: str
    key: str
    value: str
    source: str
    override: bool = False

    def error(self, message: str, *, key: str | None = None) -> ConfigError:
        return ConfigError(message, source=self.source, section=self.section, key=key or self.key, value=self.value)


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
    """Parse airflow.cfg ``text`` plus ``AIRFLOW__...`` overrides from ``environ``."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, default_section="\x00none")
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(f"not a valid airflow.cfg: {exc.message}", source=source) from exc
    except RecursionError as exc:  # pragma: no cover - configparser does not recurse today
        raise ConfigError("not a valid airflow.cfg: nested too deeply", source=source) from exc
    settings = [
        Setting(section, key, value, source)
        for section in parser.sections()
        if section in (*SECTIONS, *_AIRFLOW_SECTIONS) or section.startswith("kubernetes_tier")
        for key, value in parser.items(section)
    ]
    settings.extend(env_settings(os.environ if environ is None else environ))
    return build_config(settings, source=source)


def env_settings(environ: Mapping[str, str]) -> list[Setting]:
    """``AIRFLOW__<section>__<key>`` of the sections read here (kubernetes_executor, kubernetes, core, workers)."""
    out = []
    for name in sorted(environ):
        if not name.startswith("AIRFLOW__"):
            continue
        section, sep, key = name[len("AIRFLOW__") :].partition("__")
        if sep and section in _ENV_SECTIONS and key:
            out.append(Setting(_ENV_SECTIONS[section], key.lower(), environ[name], f"env:{name}", override=True))
    return out


def build_config(settings: Iterable[Setting], *, source: str) -> ExecutorConfig:
    """Validate ``settings`` (from any source) into an :class:`ExecutorConfig`; see the module docstring."""
    problems: list[ConfigError] = []
    chosen: dict[str, Setting] = {}
    tier_settings: dict[str, list[Setting]] = {}
    for setting in settings:
        try:
            if setting.section.startswith("kubernetes_tier"):
                tier_settings.setdefault(setting.section, []).append(setting)
            elif setting.section in _AIRFLOW_SECTIONS:
                if setting.key in _AIRFLOW_SECTIONS[setting.section] or (setting.section, setting.key) == (
                    "core",
                    "executor",
                ):
                    _choose(chosen, f"{setting.section}.{setting.key}", setting)
            else:
                _choose(chosen, _kubernetes_key(setting), setting)
        except ConfigError as exc:
            problems.append(exc)
    values: dict[str, Any] = {}
    origin: dict[str, Setting] = {}
    for target, setting in chosen.items():
        section, _, key = target.rpartition(".")
        if key in config_keys.OBSOLETE or key in config_keys.ONLY_DEFAULT or _unset(key, setting):
            continue
        origin[key] = setting
        try:
            values[key] = _parse(key, setting, _AIRFLOW_SECTIONS.get(section, _KEYS))
        except ConfigError as exc:
            problems.append(exc)
    try:
        _combine_image_parts(values, origin)
    except ConfigError as exc:
        problems.append(exc)
    tiers = []
    for section, items in tier_settings.items():
        try:
            tiers.append(_tier(section, items))
        except ConfigError as exc:
            problems.append(exc)
    raise_all(problems, source=source)  # cross-field rules need every key parsed
    if tiers:
        values["tiers"] = tuple(tiers)
    config = ExecutorConfig(**values)
    raise_all(cross_field_problems(config, origin, source), source=source)
    return config


def _kubernetes_key(setting: Setting) -> str:
    key = setting.key
    if key in config_keys.ONLY_DEFAULT:
        default, why = config_keys.ONLY_DEFAULT[key]
        if setting.value.strip() != default:
            raise setting.error(f"only {default!r} (the default) is supported: {why}")
        return f"{SECTION}.{key}"
    target = config_keys.ALIASES.get(key, key)
    if target not in _KEYS and target not in _IMAGE_PARTS and target not in config_keys.OBSOLETE:
        known = [*_KEYS, *config_keys.ALIASES, *_IMAGE_PARTS]
        raise setting.error(f"unknown key{_did_you_mean(key, known)}")
    return f"{SECTION}.{target}"


def _choose(chosen: dict[str, Setting], target: str, setting: Setting) -> None:
    previous = chosen.get(target)
    if previous is None or (setting.override and not previous.override):
        chosen[target] = setting
    elif setting.override == previous.override:
        raise setting.error(
            f"set twice: also in {previous.source} [{previous.section}] {previous.key} "
            f"([{ALIAS_SECTION}] is an alias of [{SECTION}])"
        )


def _unset(key: str, setting: Setting) -> bool:
    """Airflow reads an empty value of its own keys as "not set" (comma lists excepted: empty is a list)."""
    table = _AIRFLOW_SECTIONS.get(setting.section, _KEYS)
    spec = table.get(key)
    airflow_key = (spec is not None and spec.airflow) or key in _IMAGE_PARTS
    return airflow_key and not setting.value.strip() and key not in config_keys.EMPTY_IS_A_VALUE


def _did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parse(key: str, setting: Setting, table: Mapping[str, config_keys.Key]) -> Any:
    if key == "executor":
        return _core_executor(setting)
    if key in _IMAGE_PARTS:
        return setting.value.strip() or None
    try:
        return table[key].parse(setting.value)
    except ValueError as exc:
        raise setting.error(str(exc)) from exc


def executor_class_names(value: str) -> list[str]:
    """The class names ``[core] executor`` lists: comma-separated, ``alias:module.Class`` entries allowed."""
    return [entry.strip().rpartition(":")[2].rsplit(".", 1)[-1] for entry in value.split(",")]


def _core_executor(setting: Setting) -> str:
    """``[core] executor``: a comma-separated list (``alias:path`` entries allowed) naming this executor."""
    value = setting.value.strip()
    if EXECUTOR_CLASS_NAME not in executor_class_names(value):
        raise setting.error(
            f"this platform's executor is not listed; set executor = {ExecutorConfig().executor}", key="executor"
        )
    return value


def _combine_image_parts(values: dict[str, Any], origin: dict[str, Setting]) -> None:
    """Airflow's worker_container_repository + worker_container_tag form of the image."""
    repository = values.pop("worker_container_repository", None)
    tag = values.pop("worker_container_tag", None)
    repository_setting = origin.pop("worker_container_repository", None)
    tag_setting = origin.pop("worker_container_tag", None)
    setting = repository_setting or tag_setting
    if setting is None or (repository is None and tag is None):
        return
    if "worker_container_image" in values:
        raise setting.error(
            "give either worker_container_image or worker_container_repository/_tag, not both",
            key="worker_container_repository",
        )
    if repository is None or tag is None:
        missing = "worker_container_repository" if repository is None else "worker_container_tag"
        raise setting.error("worker_container_repository and worker_container_tag must be given together", key=missing)
    values["worker_container_image"] = _parse(
        "worker_container_image", Setting(setting.section, setting.key, f"{repository}:{tag}", setting.source), _KEYS
    )
    origin["worker_container_image"] = setting


def _tier(section: str, settings: list[Setting]) -> Tier:
    name = section[len(TIER_PREFIX) :] if section.startswith(TIER_PREFIX) else ""
    first = settings[0]
    if not name or not k8snames.is_dns1123_label(name):
        raise ConfigError(
            "tier sections are named [kubernetes_tier:<name>] with a DNS-1123 label name",
            source=first.source,
            section=section,
        )
    values: dict[str, Any] = {}
    for setting in settings:
        if setting.key not in _TIER_KEYS:
            raise setting.error(f"unknown tier key{_did_you_mean(setting.key, list(_TIER_KEYS))}")
        if setting.key in values:
            raise setting.error("set twice")
        values[setting.key] = _parse(setting.key, setting, _TIER_KEYS)
    for required in ("request_cpu", "request_memory"):
        if required not in values:
            raise ConfigError("required tier key is missing", source=first.source, section=section, key=required)
    template = values.get("pod_template")
    if template is not None and ("/" in template or template in (".", "..")):
        raise ConfigError(
            "pod_template is a file name inside pod_template_dir, not a path",
            source=first.source,
            section=section,
            key="pod_template",
            value=template,
        )
    return Tier(name=name, **values)
