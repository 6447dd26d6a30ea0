"""``python -m consumers.status_recorder [serve|worker]``: see :mod:`consumers.services`."""

import sys

from consumers.services import main

sys.exit(main("status"))
