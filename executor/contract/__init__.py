"""The contract layer: airflow.cfg keys, their parsing and rendering, and the shared vocabulary.

Pure values and functions - no threads, no network, no filesystem except reading a config file -
and no imports from the other layers.  :mod:`airflow_k8s.infra` renders airflow.cfg with these
modules, so what the platform generates is by construction what the executor accepts.
"""
