"""The Pulumi ComponentResources of the platform (``airflow-k8s:index:<Name>``) and their helpers.

Components take typed args (:mod:`airflow_k8s.infra.config`) and never build a provider or read
stack config; :class:`~airflow_k8s.infra.components.platform.AirflowK8sPlatform` composes them.
"""
