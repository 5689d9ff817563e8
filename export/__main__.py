"""`python -m export ...` is `parley export ...` (see export/bundle.py)."""

import sys

from export.bundle import main

sys.exit(main())
