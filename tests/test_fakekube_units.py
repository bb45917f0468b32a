"""Unit tests of the fake's building blocks: quantities, selectors, patches, the store's history, the scheduler."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakekube import Behavior, ClusterConfig, NodeSpec, Taint, default_behavior
from tests.fakekube.errors import ApiError
from tests.fakekube.nodes import NodeView
from tests.fakekube.patch import PatchError, json_patch, merge_patch
from tests.fakekube.quantity import format_kibibytes, format_nanocores, parse_quantity, to_milli
from tests.fakekube.scheduler import NodeState, PodState, choose_node, plan_preemption
from tests.fakekube.selectors import FieldSelector, LabelSelector
from tests.fakekube.store import Store
from tests.fakekube.watchers import ResourceExpired


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", Decimal("0.25")),
        ("1", Decimal(1)),
        ("1.5", Decimal("1.5")),
        ("2k", Decimal(2000)),
        ("1Ki", Decimal(1024)),
        ("1.5Gi", Decimal(1610612736)),
        ("1e3", Decimal(1000)),
        ("1E", Decimal(10) ** 18),
        ("100n", Decimal("1e-7")),
        (".5", Decimal("0.5")),
        (3, Decimal(3)),
    ],
)
def test_quantities_parse_exactly(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Kb", "1 Gi", "--1", "1.2.3"])
def test_malformed_quantities_are_rejected(text):
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)


@given(st.integers(min_value=0, max_value=10**6))
def test_milli_round_trips_through_the_m_suffix(milli):
    assert to_milli(f"{milli}m") == milli


def test_usage_formats_match_metrics_server():
    assert format_nanocores(250) == "250000000n"
    assert format_kibibytes(to_milli("128Mi")) == "131072Ki"


def test_label_selector_semantics_for_missing_keys():
    labels = {"a": "1"}
    assert LabelSelector.parse("b!=1").matches(labels)
    assert LabelSelector.parse("b notin (1)").matches(labels)
    assert not LabelSelector.parse("b in (1)").matches(labels)
    assert LabelSelector.parse("a>0,a<2").matches(labels)
    assert LabelSelector.parse("example.com/role=db").matches({"example.com/role": "db"})


@pytest.mark.parametrize("bad", ["a=b c", "a in ()", "a=(b)", "a=b'", "UPPER/x=1", "a=" + "x" * 64])
def test_label_selector_rejects_invalid_input(bad):
    with pytest.raises(ApiError) as info:
        LabelSelector.parse(bad)
    assert info.value.code == 400


def test_field_selector_escapes_and_unknown_fields():
    selector = FieldSelector.parse(r"metadata.name=a\,b", "pods")
    assert selector.matches_object({"metadata": {"name": "a,b"}})
    with pytest.raises(ApiError):
        FieldSelector.parse("status.bogus=1", "pods")


def test_merge_patch_follows_rfc_7386():
    target = {"a": {"b": 1, "c": 2}, "d": [1, 2]}
    assert merge_patch(target, {"a": {"b": None, "e": 3}, "d": [3]}) == {"a": {"c": 2, "e": 3}, "d": [3]}
    assert target == {"a": {"b": 1, "c": 2}, "d": [1, 2]}


def test_json_patch_follows_rfc_6902():
    doc = {"a": [1, 2], "b": {"c~d": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "add", "path": "/a/0", "value": 0},
        {"op": "remove", "path": "/b/c~0d"},
        {"op": "copy", "from": "/a/1", "path": "/b/x"},
        {"op": "move", "from": "/b/x", "path": "/y"},
        {"op": "test", "path": "/y", "value": 1},
    ]
    assert json_patch(doc, ops) == {"a": [0, 1, 2, 3], "b": {}, "y": 1}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "replace", "path": "/missing", "value": 1}])


def _pod(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "uid": name}, "spec": {}}


def test_store_history_eviction_sets_the_expiry_floor():
    store = Store(history_size=2)
    start = store.rv
    for name in "abc":
        store.create("pods", _pod(name))
    with pytest.raises(ResourceExpired) as info:
        store.watch("pods", "ns", str(start))
    assert info.value.error.code == 410
    watcher = store.watch("pods", "ns", str(start + 1))
    assert [e.new.obj["metadata"]["name"] for e in watcher.take(0)] == ["b", "c"]


def test_store_update_without_change_creates_no_event():
    store = Store()
    store.create("pods", _pod("a"))
    watcher = store.watch("pods", None, str(store.rv))
    before = store.rv
    store.update("pods", "ns", "a", lambda obj: None)
    assert store.rv == before and watcher.take(0) == []


def _state(name: str, cpu: int, priority: int = 0, created: float = 0.0, **spec) -> PodState:
    return PodState("ns", name, name, created, priority, {"cpu": cpu, "pods": 1000}, spec, Behavior())


def _node(spec: NodeSpec, index: int = 1) -> NodeState:
    return NodeState(NodeView.from_object(spec.to_object(index)))


def test_scheduler_spreads_and_explains_failures():
    nodes = {n: _node(NodeSpec(n, cpu="1")) for n in ("a", "b")}
    first, _ = choose_node(_state("p1", 600), nodes)
    first.add(_state("p1", 600))
    second, _ = choose_node(_state("p2", 600), nodes)
    assert {first.view.name, second.view.name} == {"a", "b"}
    second.add(_state("p2", 600))
    node, message = choose_node(_state("p3", 600), nodes)
    assert node is None
    assert message.startswith("0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available:")


def test_preemption_picks_the_lowest_priority_youngest_victims():
    node = _node(NodeSpec("n", cpu="2"))
    for state in (_state("old-low", 1000, 1, 1.0), _state("young-low", 1000, 1, 2.0), _state("mid", 0, 5)):
        state.holds = True
        node.add(state)
    plan = plan_preemption(_state("high", 1000, 10), {"n": node})
    assert plan is not None and [v.name for v in plan[1]] == ["young-low"]


def test_untolerated_taints_block_and_tolerations_admit():
    tainted = {"t": _node(NodeSpec("t", taints=(Taint("gpu", "yes", "NoExecute"),)))}
    assert choose_node(_state("p", 1), tainted)[0] is None
    tolerant = _state("p", 1, tolerations=[{"key": "gpu", "operator": "Equal", "value": "yes"}])
    assert choose_node(tolerant, tainted)[0] is not None


def test_default_behavior_reads_annotations_and_image():
    pod = {
        "metadata": {"annotations": {"fakekube/outcome": "fail", "fakekube/exit-code": "4", "fakekube/log": "x\ny"}},
        "spec": {"containers": [{"image": "ok:1"}]},
    }
    assert default_behavior(pod) == Behavior(outcome="fail", exit_code=4, log=("x", "y"))
    pod["spec"]["containers"][0]["image"] = "repo/app:bad"
    assert default_behavior(pod).outcome == "errimagepull"
    with pytest.raises(ValueError, match="unknown outcome"):
        Behavior(outcome="explode")


def test_config_changes_are_validated():
    config = ClusterConfig().with_changes(run_seconds="2", emit_events=0)
    assert config.run_seconds == 2.0 and config.emit_events is False
    with pytest.raises(ValueError, match="unknown config keys"):
        config.with_changes(nope=1)
    with pytest.raises(ValueError, match="history_size"):
        config.with_changes(history_size=0)
