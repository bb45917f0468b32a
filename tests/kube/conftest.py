"""A hostile API server for the client's tests, alone or in front of the fake one; clients for both transports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kubernetes import client as k8s_client

from airflow_k8s.executor.kube import connection
from airflow_k8s.executor.kube.client import KubeClient
from tests.hostile.server import HostileServer

WAIT = 60.0
"""Deadline of every wait: generous, so a loaded machine only makes a passing test slower."""


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


@pytest.fixture
def hostile_fake(fake_kube) -> Iterator[HostileServer]:
    """Hostile where a test adds rules; everything else is answered by the fake API server."""
    with HostileServer(upstream=fake_kube.url) as server:
        yield server


ClientFactory = Callable[..., KubeClient]


@pytest.fixture(params=["stdlib", "urllib3"])
def make_client(request: pytest.FixtureRequest) -> Iterator[ClientFactory]:
    """``make_client(url, **kwargs)``: a client over the stdlib keep-alive transport, or over urllib3
    (a proxied cluster: the client talks to ``url`` as its HTTP proxy)."""
    clients: list[KubeClient] = []

    def make(url: str, **kwargs: object) -> KubeClient:
        if request.param == "stdlib":
            client = KubeClient.for_host(url, **kwargs)  # type: ignore[arg-type]
        else:
            configuration = k8s_client.Configuration()
            configuration.host = "http://kube-api.invalid"  # only the proxy is ever connected to
            configuration.proxy = url
            client = KubeClient(connection.tuned(configuration, 4), **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
