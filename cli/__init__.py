"""The command line: one module per sub-command of main.py (argparse only, no Qt)."""
