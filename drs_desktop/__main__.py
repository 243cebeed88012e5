"""`python -m drs_desktop`: the same as the `drs-desktop` command."""

import sys

from drs_desktop.app import main

sys.exit(main())
