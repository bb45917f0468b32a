"""``python -m executor``: see :mod:`executor.cli`."""

import sys

from executor.cli import main

sys.exit(main())
