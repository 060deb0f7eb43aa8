"""``python -m colmda ...`` is the ``colmda`` command."""

import sys

from .cli import main

sys.exit(main())
