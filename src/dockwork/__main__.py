"""``python -m dockwork`` is the ``dockwork`` command."""

import sys

from dockwork.cli import main

sys.exit(main())
