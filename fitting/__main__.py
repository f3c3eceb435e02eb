"""Entry point for `python -m fitting`."""

import sys

from fitting import cli

sys.exit(cli.main())
