"""Decode only what the engine reads of a pod: its metadata and status, the spec left as bytes.

Why: every task's pod arrives about five times on the watch and once as the create's answer, and
the spec - containers, env, volumes, tolerations, the server's defaults - is most of each.  The
engine's lifecycle reads a pod's metadata, its status and one field of its spec (``nodeName``);
only ``tier: auto`` reads more of the spec (requests, placement), and then only of active pods.
So a pod object is split at its top-level ``"spec"`` and ``"status"`` keys, the two outer parts
are decoded, ``nodeName`` is read from the spec's bytes, and the spec's bytes are kept under
:data:`RAW_SPEC` for :func:`full_spec` to decode on demand.

Safety: the split relies on an API server's field order (metadata, spec, status: Go's struct
order, which kube-apiserver and the fake both use), and is *verified*, never trusted: a cut at
the wrong place leaves unbalanced JSON that fails to decode, and then the whole object is
decoded as before.  Strings cannot fake a key: inside a JSON string a quote is always escaped.
So the result is always what a full decode gives, minus the spec's other fields.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_k8s.executor.contract import jsonfast

RAW_SPEC = "_rawSpec"  # the undecoded spec (bytes) inside a slim pod's dict
_SPEC = b',"spec":'
_STATUS = b',"status":'
_NODE = re.compile(rb'"nodeName":"((?:[^"\\]|\\.)*)"')


def _split(data: bytes, close: bytes) -> dict[str, Any] | None:
    """``data`` (one JSON object closed by ``close``) with the pod's spec kept as bytes, or None."""
    spec_at = data.find(_SPEC)
    if spec_at < 0:
        return None
    status_at = data.find(_STATUS, spec_at)
    if status_at < 0 or not data.endswith(close):
        return None
    try:
        head = jsonfast.loads(data[:spec_at] + close)
        status = jsonfast.loads(data[status_at + len(_STATUS) : len(data) - len(close)])
    except ValueError:
        return None
    if not isinstance(head, dict) or not isinstance(status, dict):
        return None
    raw = data[spec_at + len(_SPEC) : status_at]
    nodes = _NODE.findall(raw)
    if len(nodes) > 1 or not raw.startswith(b"{") or not raw.endswith(b"}"):
        return None  # not a layout this reader is sure of: decode it all
    spec: dict[str, Any] = {RAW_SPEC: raw}
    if nodes:
        spec["nodeName"] = jsonfast.loads(b'"' + nodes[0] + b'"')
    pod = head["object"] if close == b"}}" else head
    if not isinstance(pod, dict):
        return None
    pod["spec"] = spec
    pod["status"] = status
    return head


def pod(data: bytes) -> Any:
    """A pod object (a create's answer), slim when it can be; anything else fully decoded."""
    data = data.strip()
    return _split(data, b"}") or jsonfast.loads(data)


def event(line: bytes) -> Any:
    """A watch event line, its pod slim when it can be; anything else (ERROR, other kinds) fully decoded."""
    line = line.strip()
    return _split(line, b"}}") or jsonfast.loads(line)


def full_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its whole spec (decoded now if it was left as bytes); ``obj`` itself is not changed."""
    spec = obj.get("spec")
    if not isinstance(spec, dict) or RAW_SPEC not in spec:
        return obj
    return {**obj, "spec": jsonfast.loads(spec[RAW_SPEC])}
