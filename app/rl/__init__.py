"""Views of a reinforcement-learning race: episode returns per run (`returns_plot.py`), the
gradient norm with target-update markers and the optimizer's moments (`updates_plot.py`), the
selected run's cart and pole animated (`cartpole_view.py`), composed by `view.py` (`RLView`).
The data they draw: core/engine/rl_history.py."""
