"""The command line: one module per sub-command of main.py (argparse only, no Qt).

run.py, surface.py, sweep.py (with ``--fair``), lr_find.py and lessons.py each have
``register(subparsers)``, which main.py calls in that order; output_dirs.py holds the default
output folder they share. Modules here may import core/, never app/ or Qt; nothing but main.py
(and tests) imports cli/.
"""
