"""The Kubernetes executor: config contract, pod factory and scheduler engine.

This package never imports Pulumi or ``infra``; infra imports it (the config contract) so the
platform and the scheduler share one definition of airflow.cfg.
"""

__version__ = "0.1.0"
