"""The fake's discovery documents: a discovering client (kubernetes.dynamic) finds and lists pods."""

from __future__ import annotations

from kubernetes import client
from kubernetes.dynamic import DynamicClient

from tests.fakekube.manifests import pod_manifest

NS = "team-a"


def test_the_dynamic_client_discovers_pods_and_lists_them_as_airflows_executor_does(core_v1, tmp_path):
    core_v1.create_namespaced_pod(NS, pod_manifest("p1", outcome="hang"))
    dynamic = DynamicClient(core_v1.api_client, cache_file=str(tmp_path / "discovery.json"))
    pods = dynamic.resources.get(api_version="v1", kind="Pod")
    assert pods.namespaced and "watch" in pods.verbs
    listed = dynamic.get(resource=pods, namespace=NS, label_selector="", header_params={
        "Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"})  # fmt: skip
    assert [item.metadata.name for item in listed.items] == ["p1"]


def test_api_groups_list_metrics_only_while_the_metrics_api_is_served(fake_kube_factory):
    for enabled, expected in ((True, ["metrics.k8s.io"]), (False, [])):
        server = fake_kube_factory(metrics_enabled=enabled)
        cfg = client.Configuration()
        cfg.host = server.url
        with client.ApiClient(cfg) as api:
            groups = client.ApisApi(api).get_api_versions()
            versions = client.CoreApi(api).get_api_versions()
        assert [group.name for group in groups.groups] == expected
        assert versions.versions == ["v1"]
