"""Architecture as a test: the two halves stay apart and the executor's layers import downwards only.

* ``executor/`` never imports Pulumi or ``infra`` (infra may import the executor's contract).
* Inside the executor: imagecheck < contract < tasks < pods < kube < engine < reports < airflow / cli
  (``imagecheck`` runs inside images without this package: it imports nothing of it); a module
  imports only from its own layer and the ones before it.  Only ``executor/airflow/`` imports
  ``airflow``, so the engine stays testable without Airflow installed.
* Everything is imported as ``airflow_k8s.*``: a bare ``executor`` / ``infra`` import would load
  a second copy of the same files under another name.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LAYERS = ("imagecheck", "contract", "tasks", "pods", "kube", "engine", "reports", "airflow", "cli")
PYTHON_DIRS = ("executor", "infra", "tests", "bench", "examples")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def executor_modules() -> list[Path]:
    return sorted((ROOT / "executor").rglob("*.py"))


def layer_of(path: Path) -> str:
    """``contract`` for executor/contract/x.py, ``cli`` for executor/cli.py (and __main__)."""
    parts = path.relative_to(ROOT / "executor").parts
    if len(parts) == 1:
        return "cli"
    return parts[0]


def test_no_executor_module_imports_pulumi_or_infra():
    forbidden = ("pulumi", "pulumi_kubernetes", "infra", "airflow_k8s.infra")
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_modules(path) if any(name == f or name.startswith(f + ".") for f in forbidden)
        )
        for path in executor_modules()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_executor_layers_import_only_their_own_layer_and_the_ones_below():
    offenders = {}
    for path in executor_modules():
        rank = LAYERS.index(layer_of(path))
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[:2] != ["airflow_k8s", "executor"] or len(parts) < 3:
                continue
            target = parts[2] if parts[2] in LAYERS else "cli"
            if LAYERS.index(target) > rank:
                offenders.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert offenders == {}


def test_only_the_airflow_adapter_imports_airflow():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imported_modules(path) if n.split(".")[0] == "airflow")
        for path in executor_modules()
        if layer_of(path) != "airflow"
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_nothing_imports_the_halves_by_their_folder_names():
    offenders = {}
    for folder in PYTHON_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            bare = sorted(n for n in imported_modules(path) if n.split(".")[0] in ("executor", "infra"))
            if bare:
                offenders[str(path.relative_to(ROOT))] = bare
    assert offenders == {}


def test_the_executor_runs_without_pulumi_or_airflow_installed():
    """Import every executor module but the Airflow adapter with pulumi and airflow made unimportable."""
    code = (
        "import sys, pkgutil, importlib\n"
        "for name in ('pulumi', 'pulumi_kubernetes', 'airflow'): sys.modules[name] = None\n"
        "import airflow_k8s.executor as pkg\n"
        "for m in pkgutil.walk_packages(pkg.__path__, 'airflow_k8s.executor.'):\n"
        "    if m.name.endswith('__main__') or '.airflow' in m.name: continue\n"
        "    importlib.import_module(m.name)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
