"""The documentation stays in step with the code: every key and output is described."""

from __future__ import annotations

import re

from airflow_k8s.executor.contract import config_keys
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
EXECUTOR_DOC = (ROOT / "docs" / "executor.md").read_text()


def test_the_readme_documents_every_stack_config_key():
    from airflow_k8s.infra.config.stack_keys import KEYS

    missing = [key.name for key in KEYS if f"| `{key.name}` |" not in README]
    assert missing == []


def test_the_readme_documents_every_stack_output():
    from airflow_k8s.infra.components.platform import AirflowK8sPlatform

    names = re.findall(r'"(\w+)": self\.', (ROOT / "infra" / "components" / "platform.py").read_text())
    assert names and AirflowK8sPlatform is not None
    assert [name for name in names if f"`{name}`" not in README] == []


def test_the_executor_doc_documents_every_airflow_cfg_key():
    table_keys = [key.name for key in config_keys.KUBERNETES_KEYS] + sorted(config_keys.AIRFLOW_KEYS)
    missing = [name for name in table_keys if f"| `{name}` |" not in EXECUTOR_DOC]
    mentioned = [
        *config_keys.OBSOLETE,
        *config_keys.ALIASES,
        *(k.name for k in (*config_keys.CORE_KEYS, *config_keys.WORKERS_KEYS)),
    ]
    assert missing == [] and [name for name in mentioned if f"`{name}`" not in EXECUTOR_DOC] == []


def test_the_readmes_two_setup_commands_are_make_targets():
    makefile = (ROOT / "Makefile").read_text()
    commands = re.findall(r"^make (\w+)", README, flags=re.MULTILINE)
    assert commands[:2] == ["render", "test"]
    for target in commands[:2]:
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
