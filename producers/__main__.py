"""``python -m producers``: the producer service (see :mod:`producers.app`)."""

import sys

from producers.app import main

sys.exit(main())
