"""``python -m central``: the same as ``balie-central``."""

import sys

from central.cli import main

sys.exit(main())
