"""Pytest fixtures: a started fake API server per test and official-client handles on it.

Import them into a conftest (``from tests.fakekube.fixtures import core_v1, fake_kube, kube_api_client``), or
register the module as a pytest plugin.
Startup binds an ephemeral 127.0.0.1 port and starts two threads -- no sleeps.  Tests can reshape the cluster
through ``fake_kube.cluster`` / ``fake_kube.faults`` or build their own ``FakeKubeServer`` for custom nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from .server import FakeKubeServer


@pytest.fixture
def fake_kube() -> Iterator[FakeKubeServer]:
    """A running :class:`FakeKubeServer` with one effectively unlimited node, stopped after the test."""
    server = FakeKubeServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_kube_factory() -> Iterator[Callable[..., FakeKubeServer]]:
    """``make(**kwargs)`` starts a :class:`FakeKubeServer` (``FakeKubeServer(**kwargs)``); all are stopped after the
    test, failed or not (which also kills every process a process-mode server started)."""
    servers: list[FakeKubeServer] = []

    def make(**kwargs: Any) -> FakeKubeServer:
        server = FakeKubeServer(**kwargs)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.fixture
def kube_api_client(fake_kube: FakeKubeServer) -> Iterator[client.ApiClient]:
    """A ``kubernetes.client.ApiClient`` pointed at ``fake_kube``."""
    cfg = client.Configuration()
    cfg.host = fake_kube.url
    api = client.ApiClient(cfg)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def core_v1(kube_api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api_client)
