"""``python -m airflow_k8s.executor``: see :mod:`airflow_k8s.executor.cli`."""

import sys

from airflow_k8s.executor.cli import main

sys.exit(main())
