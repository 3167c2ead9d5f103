"""The runs panel: the table of runs and the editor of the selected run."""
