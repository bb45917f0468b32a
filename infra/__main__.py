"""``python -m infra render --stack dev --out build/dev [--diff OLD_DIR] [--check]``."""

import sys

from infra.render import main

sys.exit(main())
