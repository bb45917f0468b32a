"""One real Airflow stack (:mod:`.stack`) for every end-to-end test, started once and always stopped.

The metadata database is PostgreSQL (``E2E_DATABASE=postgresql``, which ``.ci/run`` sets, makes that a
requirement).  Without PostgreSQL installed and ``E2E_DATABASE`` unset, the stack runs on SQLite, with a
warning: Airflow 3.3.2's scheduler runs these scenarios with this executor on SQLite too (checked), but
PostgreSQL is what production uses.

A failing test's report gets a section with the tail of every process's log (PostgreSQL, the fake, the
api-server, dag-processor, each scheduler and the task pods); the full logs stay in the pytest temp dir.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from tests.airflow.e2e.postgres import PostgresUnavailable, run_as, server_bindir
from tests.airflow.e2e.stack import AirflowStack, start_stack

DAG_IDS = ("custom_pod_dag", "resource_aware_k8s_dag", "e2e_pod_dies", "e2e_adoption")
DATABASES = ("postgresql", "sqlite")


def database() -> str:
    """``E2E_DATABASE`` if set; else PostgreSQL where it is installed, SQLite (with a warning) where not."""
    wanted = os.environ.get("E2E_DATABASE", "")
    if wanted:
        if wanted not in DATABASES:
            raise pytest.UsageError(f"E2E_DATABASE={wanted!r}: expected one of {DATABASES}")
        return wanted
    try:
        server_bindir()
        run_as()
    except PostgresUnavailable as exc:
        warnings.warn(f"end-to-end test on SQLite, not PostgreSQL: {exc}", stacklevel=1)
        return "sqlite"
    return "postgresql"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    started = start_stack(tmp_path_factory.mktemp("e2e"), database=database())
    try:
        started.wait_for_dags(DAG_IDS)
        yield started
    finally:
        started.services.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    stack = getattr(item, "funcargs", {}).get("stack")
    if report.failed and isinstance(stack, AirflowStack):
        report.sections.append(("end-to-end stack logs", stack.report()))
    return report
