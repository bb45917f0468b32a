"""Operator reports over the executor's pods: monitoring, cleanup, utilization and cost."""
