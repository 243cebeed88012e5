"""Entry script of the frozen `drs` (the CLI): PyInstaller needs a script, not an entry point.

Same as the `drs` console script of an installed wheel.
"""

import sys

from engine.cli import main

sys.exit(main())
