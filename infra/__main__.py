"""``python -m airflow_k8s.infra render --stack dev --out build/dev [--diff OLD_DIR] [--check]``."""

import sys

from airflow_k8s.infra.render.main import main

sys.exit(main())
