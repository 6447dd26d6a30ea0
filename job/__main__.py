"""``python -m job``: render the blueprint in BLUEPRINT_JSON / BLUEPRINT_URI (see job/README.md)."""

import sys

from job.main import main

sys.exit(main())
