"""kube/transport.py: keep-alive connections per thread, stale ones replaced, TLS from the client's Configuration."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator

import certifi
import pytest
from kubernetes import client as k8s_client

from airflow_k8s.executor.kube.deadlines import Reaper, Scope
from airflow_k8s.executor.kube.transport import Answer, Connections, ssl_context

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def configuration(host: str, **fields: object) -> k8s_client.Configuration:
    config = k8s_client.Configuration()
    config.host = host
    for name, value in fields.items():
        setattr(config, name, value)
    return config


def get(connections: Connections, target: str) -> Answer:
    ticket = Reaper().begin(10.0, Scope())
    assert ticket is not None
    try:
        return connections.request("GET", target, None, {}, (5.0, 5.0), ticket=ticket, limit=1 << 20)
    finally:
        ticket.end()


@pytest.fixture
def closing_server() -> Iterator[tuple[str, list[int], threading.Event]]:
    """Answers one request per connection, keep-alive headers and all, then closes it (``closed`` is set)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []
    stop, closed = threading.Event(), threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(RESPONSE)
            closed.set()  # the socket is closed: an idle keep-alive connection the server gave up on

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted, closed
    finally:
        stop.set()
        listener.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_before_reuse(closing_server):
    url, accepted, closed = closing_server
    connections = Connections(configuration(url))
    first = get(connections, "/a")
    assert closed.wait(10)  # the server has hung up while the connection sat idle
    second = get(connections, "/b")
    assert (first.status, second.status, second.data) == (200, 200, b"{}")
    assert len(accepted) == 2  # a fresh connection, not an error on the dead one


def test_each_thread_has_a_connection_of_its_own(fake_kube):
    connections = Connections(configuration(fake_kube.url))
    barrier = threading.Barrier(3)
    statuses: list[int] = []

    def call() -> None:
        barrier.wait(10)
        statuses.append(get(connections, "/api/v1/namespaces/a/pods").status)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == [200, 200, 200] and len(connections._open) == 3
    connections.close()
    assert connections._open == set()


def test_tls_verification_follows_the_client_configuration():
    strict = ssl_context(configuration("https://api.example:6443", ssl_ca_cert=certifi.where()))
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    assert strict.cert_store_stats()["x509_ca"] > 0  # the configured bundle is loaded
    loose = ssl_context(configuration("https://api.example:6443", verify_ssl=False))
    assert loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname
    any_name = ssl_context(configuration("https://10.0.0.1:6443", assert_hostname=False))
    assert any_name.verify_mode == ssl.CERT_REQUIRED and not any_name.check_hostname


def test_a_path_prefix_in_the_host_is_kept(fake_kube):
    connections = Connections(configuration(f"{fake_kube.url}/"))
    assert connections.prefix == ""
    assert Connections(configuration("http://proxy.local/k8s/clusters/c1")).prefix == "/k8s/clusters/c1"
