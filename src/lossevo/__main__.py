"""``python -m lossevo``: the ``lossevo`` command (lossevo.cli.main)."""

import sys

from lossevo.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
