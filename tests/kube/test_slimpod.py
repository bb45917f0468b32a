"""Decoding only what the engine reads of a pod (kube/slimpod.py): never different from a full decode."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_k8s.executor.kube import slimpod

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "7", "labels": {"a": "b"}},
    "spec": {"containers": [{"name": "base", "image": "i", "resources": {"requests": {"cpu": "1"}}}],
             "nodeName": "node-1", "tolerations": [{"key": "k", "operator": "Exists"}]},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
}  # fmt: skip


def wire(value: object) -> bytes:
    """As an API server writes it: compact JSON in Go's field order, one line."""
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def same_as_full(slim: dict, full: dict) -> bool:
    return slimpod.full_spec(slim) == full and slim["spec"].get("nodeName") == full["spec"].get("nodeName")


def test_an_event_keeps_metadata_status_and_node_name_and_the_spec_as_bytes():
    event = slimpod.event(wire({"type": "MODIFIED", "object": POD}))
    pod = event["object"]
    assert event["type"] == "MODIFIED"
    assert (pod["metadata"], pod["status"]) == (POD["metadata"], POD["status"])
    assert set(pod["spec"]) == {"nodeName", slimpod.RAW_SPEC} and pod["spec"]["nodeName"] == "node-1"
    assert slimpod.full_spec(pod) == POD


def test_a_create_answer_is_slim_too():
    assert same_as_full(slimpod.pod(wire(POD)), POD)


def test_objects_it_cannot_split_safely_are_decoded_whole():
    error = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    assert slimpod.event(wire(error)) == error
    tricky = json.loads(json.dumps(POD))
    tricky["metadata"]["labels"] = {"x": "1", "spec": "2"}  # a nested ',"spec":' before the real one
    event = slimpod.event(wire({"type": "ADDED", "object": tricky}))["object"]
    assert event == tricky or same_as_full(event, tricky)
    two_nodes = json.loads(json.dumps(POD))
    two_nodes["spec"]["affinity"] = {"nodeName": "x"}  # an unknown nested nodeName: no guessing
    assert slimpod.pod(wire(two_nodes)) == two_nodes


_text = st.text(alphabet=st.sampled_from(list('ab"\\,:{}[] spec status nodeName')), max_size=20)


@settings(max_examples=300, deadline=None)
@given(labels=st.dictionaries(_text, _text, max_size=3), node=st.one_of(st.none(), _text), message=_text)
def test_whatever_the_strings_hold_the_slim_pod_is_the_full_pod(labels, node, message):
    pod = json.loads(json.dumps(POD))
    pod["metadata"]["labels"] = labels
    pod["status"]["message"] = message
    if node is None:
        del pod["spec"]["nodeName"]
    else:
        pod["spec"]["nodeName"] = node
    slim = slimpod.event(wire({"type": "MODIFIED", "object": pod}))["object"]
    assert slim["metadata"] == pod["metadata"] and slim["status"] == pod["status"]
    assert same_as_full(slim, pod)
