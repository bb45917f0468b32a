"""Pulumi program entry point: ``pulumi up`` runs this file; the program is airflow_k8s.infra.stack."""

from airflow_k8s.infra.stack import main

main()
