"""PyInstaller's own hook for PySide6.QtGui, less the GTK3 platform theme plugin.

The app draws itself with Fusion, so the GTK3 theme adds nothing; collecting it would also bundle
pango, cairo, atk and gdk-pixbuf (~26 libraries), which on a GNOME desktop would be mixed with the
system's GTK3 at run time. Hooks in the spec's `hookspath` take precedence over the built-in one.
"""

import os

from PyInstaller.utils.hooks.qt import add_qt6_dependencies

hiddenimports, binaries, datas = add_qt6_dependencies(__file__)
binaries = [(src, dest) for src, dest in binaries if not os.path.basename(src).startswith("libqgtk3")]
