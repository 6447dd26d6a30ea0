"""``python -m consumers.blueprint_consumer [serve|worker]``: see :mod:`consumers.services`."""

import sys

from consumers.services import main

sys.exit(main("blueprint"))
