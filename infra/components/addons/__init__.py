"""What the official Helm chart runs besides Airflow's own roles: git-sync, db clean, UI access, StatsD.

Configured by :mod:`airflow_k8s.infra.config.addons`; composed by
:class:`~airflow_k8s.infra.components.platform.AirflowK8sPlatform`.
"""
