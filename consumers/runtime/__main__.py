"""``python -m consumers.runtime worker|http ...``: see :mod:`consumers.runtime.bootstrap`."""

import sys

from consumers.runtime.bootstrap import main

sys.exit(main())
