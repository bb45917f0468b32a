"""The airflow.cfg the platform publishes, read by the real Airflow 3.3.2 (the settings infra owns).

Airflow ignores unknown keys silently, so every key infra may write must exist in Airflow's own
config; and the simple auth manager must take the Admin password the platform's init container
writes, without generating (and logging) another one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.configuration import AirflowConfigParser, conf

from airflow_k8s.executor.contract.config import ExecutorConfig
from airflow_k8s.infra.components.airflowcfg import AIRFLOW_KEYS, ControlPlaneSettings, publish
from airflow_k8s.infra.config.addons import SIMPLE_AUTH_MANAGER


def test_every_key_infra_writes_exists_in_airflow() -> None:
    described = conf.configuration_description  # Airflow's own config reference (config.yml)
    missing = sorted(
        (section, key) for section, key in AIRFLOW_KEYS if key not in (described.get(section) or {}).get("options", {})
    )
    assert missing == []


def test_a_full_platform_cfg_loads_in_airflow_with_its_values() -> None:
    settings = ControlPlaneSettings(
        base_url="https://airflow.example.com",
        dags_folder="/opt/airflow/dags/repo/dags",
        auth_manager=SIMPLE_AUTH_MANAGER,
        admin_user="ops",
        statsd_host="airflow-statsd.airflow.svc.cluster.local",
    )
    text = publish(ExecutorConfig(namespace="airflow"), settings)
    parser = AirflowConfigParser()
    parser.read_string(text)
    assert parser.get("core", "dags_folder") == "/opt/airflow/dags/repo/dags"
    assert parser.getimport("core", "auth_manager").__name__ == "SimpleAuthManager"
    assert parser.get("core", "simple_auth_manager_users") == "ops:admin"
    assert parser.getboolean("metrics", "statsd_on") and parser.getint("metrics", "statsd_port") == 9125


def test_the_simple_auth_manager_takes_the_password_the_init_container_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    from airflow_k8s.infra.components.airflowcfg import WRITE_PASSWORDS_SCRIPT

    passwords = tmp_path / "passwords.json"
    env = {**os.environ, "PASSWORDS_FILE": str(passwords), "ADMIN_USER": "ops", "ADMIN_PASSWORD": "from-the-secret"}
    subprocess.run([sys.executable, "-c", WRITE_PASSWORDS_SCRIPT], env=env, check=True, timeout=60)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "ops:admin")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    manager = SimpleAuthManager()
    manager.init()  # generates (and prints) a password only for users the file lacks
    assert SimpleAuthManager.get_passwords() == {"ops": "from-the-secret"}
    assert json.loads(passwords.read_text()) == {"ops": "from-the-secret"}
