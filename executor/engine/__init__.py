"""The scheduler engine: one loop thread owns every task's state; other threads post messages.

Also the process-level pieces around it: Prometheus metrics, the probe server, JSON logs and the
placeholder pool that keeps N_min warm capacity.
"""
