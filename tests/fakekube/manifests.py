"""Helpers for tests that drive the fake: pod manifests, restricted-compliant security contexts, watch-line reading,
the control API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def pod_manifest(
    name: str,
    *,
    image: str = "busybox:1.36",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    requests: dict[str, str] | None = None,
    limits: dict[str, str] | None = None,
    restart_policy: str = "Never",
    outcome: str | None = None,
    run_seconds: float | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A minimal one-container pod (container ``base``); ``outcome``/``run_seconds`` set the fakekube annotations."""
    annotations = dict(annotations or {})
    if outcome is not None:
        annotations["fakekube/outcome"] = outcome
    if run_seconds is not None:
        annotations["fakekube/run-seconds"] = str(run_seconds)
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    metadata: dict[str, Any] = {"name": name, "labels": labels or {}}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "restartPolicy": restart_policy,
            "containers": [{"name": "base", "image": image, "resources": resources}],
            **spec,
        },
    }


RESTRICTED_POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SECURITY_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def restricted(pod: dict[str, Any]) -> dict[str, Any]:
    """Make ``pod`` satisfy the "restricted" Pod Security Standard (mutates and returns it)."""
    pod["spec"]["securityContext"] = dict(RESTRICTED_POD_SECURITY_CONTEXT)
    for container in pod["spec"]["containers"]:
        container["securityContext"] = json.loads(json.dumps(RESTRICTED_CONTAINER_SECURITY_CONTEXT))
    return pod


def watch_events(response: Any) -> Iterator[dict[str, Any]]:
    """Decode a raw watch response (``_preload_content=False``) into event dicts, whatever the chunking."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)


def collect(response: Any, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events of a watch response, then the response closed."""
    events = []
    for event in watch_events(response):
        events.append(event)
        if len(events) == count:
            break
    response.close()
    return events


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``[(type, metadata.name)]`` for compact assertions (BOOKMARK events have no name: ``""``)."""
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


def control(api: Any, method: str, path: str, body: Any = None) -> Any:
    """Call the ``/_fake/`` control API through a ``kubernetes.client.ApiClient``; returns the decoded JSON.
    Raises ``RuntimeError`` with the Status message for a non-200 answer."""
    response = api.call_api(*api.param_serialize(method, f"/_fake/{path}", body=body))
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"/_fake/{path}: {response.status} {data.decode()}")
    return json.loads(data) if data and data != b"ok" else data
