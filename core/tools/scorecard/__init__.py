"""The scorecard: optimizers compared the way AlgoPerf does, on small workloads (docs/scorecard.md).

What lives where: ``profiles.py`` time-to-target tables -> performance profiles and the score B;
``workloads.py`` the shipped suite (resources/workloads/) and its held-out variants, and one
trial's time to target in steps and gradient evaluations; ``run.py`` the rulesets (external
tuning on Optuna, self-tuning) and scorecard.json. The package holds this docstring only.
"""
