"""The executor's settings as Airflow sees them: read through Airflow's own configuration.

Inside Airflow, ``airflow.configuration.conf`` has already resolved the file, the
``AIRFLOW__<SECTION>__<KEY>`` environment variables, the ``_cmd``/``_secret`` variants Airflow
allows and any secrets backend; this module turns what it resolved into
:class:`~airflow_k8s.executor.contract.config_loader.Setting` values and hands them to the same
validator as the standalone runner (:func:`~airflow_k8s.executor.contract.config_loader.build_config`).

Values Airflow reports from its own defaults are skipped: for every Airflow key this executor's
default is Airflow's default (the Airflow test tier checks that), and a key that is unset must
stay unset where unset and default differ (``worker_pods_creation_batch_size``).

Only the executor's sections are read - never ``conf.as_dict()``, which runs every ``*_cmd``
option of the whole configuration: inside a DAG file processor (where the cluster policy reads
these settings) Airflow's supervisor sets ``[database] sql_alchemy_conn_cmd = /bin/false`` to
keep DAG code off the database, and that command fails.

``[core] execution_api_server_url`` is Airflow's effective value (it defaults to one derived
from ``[api] base_url``), so task pods call the same URL Airflow's own executors would.
``[workers] execution_api_retries`` / ``_retry_wait_min`` / ``_retry_wait_max``, when set, are
what task pods get; left at Airflow's defaults, task pods get the executor's (they ride out an
api-server restart, Airflow's do not: :data:`~airflow_k8s.executor.contract.config.TASK_API_RETRIES`).
"""

from __future__ import annotations

import os
from typing import Any

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.executor.contract.config_keys import WORKERS_KEYS
from airflow_k8s.executor.contract.config_loader import ALIAS_SECTION, SECTION, Setting, build_config
from airflow_k8s.executor.contract.config_rules import TIER_PREFIX

SOURCE = "airflow config"
_SHARED_KEYS = {"core": ("executor", "execution_api_server_url"), "workers": tuple(k.name for k in WORKERS_KEYS)}


def airflow_settings(conf: Any) -> list[Setting]:
    """Every non-default setting of the executor's sections, with where Airflow found it."""
    sections = [SECTION, ALIAS_SECTION, *_SHARED_KEYS, *(s for s in conf.sections() if s.startswith(TIER_PREFIX))]
    settings = []
    for section in sections:
        found: dict[str, tuple[str, str]] = {}
        if conf.has_section(section):  # the file, or conf.set()
            found.update((key, (str(value), "airflow.cfg")) for key, value in conf.items(section))
        prefix = f"AIRFLOW__{section.upper()}__"
        for name in sorted(os.environ):
            if name.startswith(prefix) and len(name) > len(prefix):
                key = name[len(prefix) :].lower()
                found[key] = (str(conf.get(section, key, fallback=os.environ[name])), "env var")
        for key, (value, source) in found.items():
            if section in _SHARED_KEYS and key not in _SHARED_KEYS[section]:
                continue
            settings.append(Setting(section, key, value, _where(source, section, key), source == "env var"))
    return settings


def load_settings(conf: Any, *, execution_api_server_url: str | None = None) -> ExecutorConfig:
    """The validated :class:`ExecutorConfig` from Airflow's ``conf`` (errors name where each value came from)."""
    settings = airflow_settings(conf)
    if execution_api_server_url and not any(s.key == "execution_api_server_url" for s in settings):
        derived = f"{SOURCE} (derived from [api] base_url)"
        settings.append(Setting("core", "execution_api_server_url", execution_api_server_url, derived))
    return build_config(settings, source=SOURCE)


def _where(source: str, section: str, key: str) -> str:
    variable = f"AIRFLOW__{section.upper()}__{key.upper()}"
    return {
        "env var": f"env:{variable}",
        "cmd": f"env:{variable}_CMD",
        "secret": f"secrets backend ({variable}_SECRET)",
    }.get(str(source), f"{SOURCE} ({source})")
