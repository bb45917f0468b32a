"""The stack program under mocks: config errors surface as one clean RunError naming the key."""

from __future__ import annotations

import pulumi
import pytest

from airflow_k8s.infra.components.platform import AirflowK8sPlatform, PlatformArgs
from airflow_k8s.infra.components.secrets import PlatformSecrets
from airflow_k8s.infra.config.stack_config import parse_stack_config
from airflow_k8s.infra.render.offline import evaluate

from .conftest import PROVIDER_FLAGS, SECRET_DB_URL, objects, run_stack


def test_bad_config_is_a_run_error_naming_key_and_value() -> None:
    with pytest.raises(pulumi.RunError) as info:
        run_stack(workerPodsMax=0, namespace="Bad")
    message = str(info.value)
    assert "airflow-k8s:workerPodsMax = '0': must be >= 1" in message
    assert "airflow-k8s:namespace = 'Bad'" in message
    assert SECRET_DB_URL not in message


def test_unknown_key_in_the_stack_is_reported() -> None:
    with pytest.raises(pulumi.RunError, match="airflow-k8s:workerPodMax: unknown key; did you mean"):
        run_stack(workerPodMax=8)


def test_missing_database_url_is_reported() -> None:
    with pytest.raises(pulumi.RunError, match="airflow-k8s:databaseUrl: is not set: pulumi config set --secret"):
        evaluate(dict(PROVIDER_FLAGS))


def test_a_provider_that_would_replace_config_maps_and_secrets_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE", raising=False)
    monkeypatch.delenv("PULUMI_K8S_ENABLE_SECRET_MUTABLE", raising=False)
    config = {"airflow-k8s:databaseUrl": SECRET_DB_URL, "kubernetes:enableSecretMutable": "true"}
    with pytest.raises(pulumi.RunError) as info:
        evaluate(config, secret_keys=["airflow-k8s:databaseUrl"])
    assert (
        "kubernetes:enableConfigMapMutable must be true (pulumi config set kubernetes:enableConfigMapMutable true)"
        in (str(info.value))
    )
    assert "enableSecretMutable" not in str(info.value)
    monkeypatch.setenv("PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE", "true")  # the provider's own fallback counts too
    assert evaluate(config, secret_keys=["airflow-k8s:databaseUrl"]).plain_outputs()["namespace"] == "airflow"


def test_other_namespaces_are_left_alone(stack) -> None:
    config = {"airflow-k8s:databaseUrl": SECRET_DB_URL, "kubernetes:context": "dev-cluster", **PROVIDER_FLAGS}
    assert evaluate(config, secret_keys=["airflow-k8s:databaseUrl"]).plain_outputs()["namespace"] == "airflow"


def test_platform_is_importable_and_usable_from_another_program() -> None:
    """Another stack builds the component directly with typed args (no stack config involved)."""
    from airflow_k8s import infra
    from airflow_k8s.executor.pods.templates import TemplateStore
    from airflow_k8s.infra.stack import PROJECT_DIR

    assert infra.AirflowK8sPlatform is AirflowK8sPlatform

    def other_program() -> None:
        config = parse_stack_config({"namespace": "team-a"}, secrets_set={"databaseUrl"}).platform
        templates = TemplateStore(PROJECT_DIR / "pod_templates").load_all()
        secrets = PlatformSecrets(database_url=pulumi.Output.secret("postgresql://x"))
        platform = AirflowK8sPlatform("team-a", PlatformArgs(config, templates, secrets))
        pulumi.export("ns", platform.namespace)

    evaluation = evaluate(dict(PROVIDER_FLAGS), program=other_program)  # the default provider, updating in place
    assert evaluation.plain_outputs() == {"ns": "team-a"}
    assert {o["metadata"]["name"] for o in objects(evaluation, "ServiceAccount")} == {
        "team-a-scheduler",
        "team-a-api-server",
        "team-a-control-plane",
        "team-a-worker",
    }
    (platform,) = evaluation.of_type("airflow-k8s:index:AirflowK8sPlatform")
    assert platform.parent.endswith("pulumi:pulumi:Stack::airflow-k8s-dev")


def test_providers_are_passed_by_the_caller_not_created() -> None:
    evaluation = run_stack()
    assert not [r for r in evaluation.resources if r.type.startswith("pulumi:providers:")]

    from airflow_k8s.infra import PlatformProvider

    evaluation = evaluate({}, program=lambda: _platform_with(PlatformProvider("cluster-b", context="cluster-b")))
    providers = [r for r in evaluation.resources if r.type.startswith("pulumi:providers:")]
    assert [p.name for p in providers] == ["cluster-b"]  # only the caller's
    assert providers[0].inputs["enableConfigMapMutable"] == providers[0].inputs["enableSecretMutable"] == "true"
    objects_ = evaluation.kubernetes()
    assert len(objects_) == 44  # the default backend (none) creates no NodePool; 2 image preflight Jobs
    assert all(r.provider.startswith(providers[0].urn) for r in objects_)


def _platform_with(provider: pulumi.ProviderResource | None) -> None:
    from airflow_k8s.executor.pods.templates import TemplateStore
    from airflow_k8s.infra.stack import PROJECT_DIR

    config = parse_stack_config({}, secrets_set={"databaseUrl"}).platform
    templates = TemplateStore(PROJECT_DIR / "pod_templates").load_all()
    AirflowK8sPlatform(
        "b",
        PlatformArgs(config, templates, PlatformSecrets(pulumi.Output.secret("x"))),
        opts=pulumi.ResourceOptions(providers=[provider] if provider else None),
    )


def test_the_component_itself_refuses_a_provider_it_cannot_prove_updates_in_place(monkeypatch) -> None:
    """Not only the repository's stack program: any program that builds the component."""
    import pulumi_kubernetes as k8s

    from airflow_k8s.infra import PlatformProvider
    from airflow_k8s.infra.components.preflight import PreflightError

    monkeypatch.delenv("PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE", raising=False)
    monkeypatch.delenv("PULUMI_K8S_ENABLE_SECRET_MUTABLE", raising=False)
    plain = lambda: _platform_with(k8s.Provider("cluster-c", enable_config_map_mutable=True))  # noqa: E731
    with pytest.raises(PreflightError, match="the Kubernetes provider 'cluster-c' is not a PlatformProvider"):
        evaluate({}, program=plain)
    with pytest.raises(PreflightError, match="kubernetes:enableSecretMutable must be true"):
        evaluate({"kubernetes:enableConfigMapMutable": "true"}, program=lambda: _platform_with(None))
    with pytest.raises(ValueError, match="enable_secret_mutable=False is what the platform cannot run with"):
        PlatformProvider("d", enable_secret_mutable=False)


def test_a_template_directory_that_holds_no_templates_is_an_error_naming_the_key() -> None:
    with pytest.raises(pulumi.RunError) as info:
        run_stack(podTemplatesDir="/etc")
    assert "airflow-k8s:podTemplatesDir = '/etc': cannot publish the pod templates of /etc: " in str(info.value)
