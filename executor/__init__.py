"""The executor half: an Airflow 3 executor that runs each task in its own hardened pod.

Layers, each importing only from the ones before it (``tests/test_boundaries.py`` checks it)::

    contract  the airflow.cfg contract, shared vocabulary (errors, quantities, names); no I/O
    tasks     what a task is: its key, command, overrides, pod identity and recorded outcome
    pods      task -> pod manifest: templates, merge, schema, Pod Security, capacity
    kube      the Kubernetes API: a thin client, retries, the watcher and the pod launcher
    engine    the scheduler engine (one owner thread), metrics, probes, placeholder pods
    reports   monitoring, cleanup, utilization and cost
    airflow   the adapter to Airflow's BaseExecutor - the only package that imports airflow
    cli       ``python -m airflow_k8s.executor``: operator commands

This package never imports Pulumi or :mod:`airflow_k8s.infra`; infra imports the contract from
here, so the platform and the executor share one definition of airflow.cfg.
"""

__version__ = "0.1.0"
