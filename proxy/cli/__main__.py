"""`python -m driftgate.proxy.cli`: the same as the `driftgate` command."""

import sys

from driftgate.proxy.cli import main

sys.exit(main())
