"""Entry script of the frozen `drs-desktop` (the GUI): PyInstaller needs a script, not an entry point.

Same as the `drs-desktop` console script of an installed wheel.
"""

import sys

from drs_desktop.app import main

sys.exit(main())
