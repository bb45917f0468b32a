"""The two halves stay apart: executor/ never imports Pulumi or infra/ (infra may import executor)."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT

FORBIDDEN = ("pulumi", "pulumi_kubernetes", "infra")


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_executor_module_imports_pulumi_or_infra():
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN)
        for path in (ROOT / "executor").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_executor_runs_without_pulumi_installed():
    """Import every executor module with pulumi made unimportable (as in the scheduler image)."""
    code = (
        "import sys, pkgutil, importlib\n"
        "sys.modules['pulumi'] = None\nsys.modules['pulumi_kubernetes'] = None\n"
        "import executor\n"
        "for m in pkgutil.iter_modules(executor.__path__):\n"
        "    if m.name == '__main__': continue\n"
        "    importlib.import_module('executor.' + m.name)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
