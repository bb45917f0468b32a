"""``python -m airflow_k8s.executor.imagecheck --spec JSON``: the in-image check (see :mod:`.incontainer`)."""

import sys

from airflow_k8s.executor.imagecheck.incontainer import main

sys.exit(main(sys.argv[1:]))
