"""Where `hbox` was: it lives in app/widgets/layouts.py now.

Kept only while app/export/dialog.py (being split by another change) still imports it from here;
that import moves to app.widgets.layouts and this module goes with the split.
"""

from __future__ import annotations

from app.widgets.layouts import hbox as hbox
