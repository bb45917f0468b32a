"""Six tasks whose executor_config this executor refuses, one mistake each: with the package's cluster policy
installed (the ``airflow.policy`` entry point) the DAG does not import, and the import error names each task,
the field and the rule."""

from datetime import datetime

from airflow.sdk import dag, task
from kubernetes.client import models as k8s

# The provider's documented volume example (example_kubernetes_executor.py): a hostPath volume.
HOST_PATH = k8s.V1Pod(
    spec=k8s.V1PodSpec(
        containers=[
            k8s.V1Container(
                name="base",
                volume_mounts=[k8s.V1VolumeMount(mount_path="/foo/", name="example-kubernetes-test-volume")],
            )
        ],
        volumes=[
            k8s.V1Volume(name="example-kubernetes-test-volume", host_path=k8s.V1HostPathVolumeSource(path="/tmp/"))
        ],
    )
)


@dag(schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"])
def e2e_broken_configs():
    @task(executor_config={"kubernetes_confg": {"tier": "light"}})
    def misspelt_key(): ...

    @task(executor_config={"kubernetes_config": {"resource": {"requests": {"cpu": "1"}}}})
    def misspelt_field(): ...

    @task(executor_config={"kubernetes_config": {"tier": "huge"}})
    def unknown_tier(): ...

    @task(executor_config={"kubernetes_config": {"resources": {"requests": {"cpu": "500x"}}}})
    def not_a_quantity(): ...

    @task(executor_config={"pod_override": HOST_PATH})
    def host_path_volume(): ...

    @task(executor_config={"kubernetes_config": {"resources": {"requests": {"cpu": "8"}, "limits": {"cpu": "4"}}}})
    def request_over_limit(): ...

    @task(executor_config={"kubernetes_config": {"tier": "light"}})
    def fine(): ...

    misspelt_key()
    misspelt_field()
    unknown_tier()
    not_a_quantity()
    host_path_volume()
    request_over_limit()
    fine()


e2e_broken_configs()
