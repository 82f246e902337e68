"""``python -m console``: the same as the ``execconsole`` command."""

import sys

from console.cli.main import main

sys.exit(main())
