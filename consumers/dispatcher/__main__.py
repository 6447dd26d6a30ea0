"""``python -m consumers.dispatcher [serve|worker]``: see :mod:`consumers.services`."""

import sys

from consumers.services import main

sys.exit(main("dispatcher"))
