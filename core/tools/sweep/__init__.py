"""Hyperparameter sweeps and fair races, on Optuna.

A sweep tunes one run of a lab: Optuna proposes hyperparameters, the engine trains them, and the
objective (averaged over S seeds) goes back to Optuna. Everything a user can type is checked here
and refused with a `LabError` naming the flag and the allowed form.

Search space
    Built from the registries' `HyperParam` specs (core/optim/optimizers.py): with no flags, the
    run's ``lr`` over its registry ``search`` range (log scale). Each ``--param`` narrows or adds
    one parameter (`parse_param`)::

        lr=1e-4:1e-1            a range; log scale when the registry says so (lr does)
        lr=1e-4:1e-1:log        a range on a log scale (":linear" for a linear one)
        momentum=0.5:0.99:5     ...with 5 points when the sampler is "grid" (default 5)
        nesterov=true,false     a list of values (bools, choices or numbers)
        weight_decay            the registry's own search range for it

Samplers
    ``grid`` (every combination; continuous ranges get N points), ``random``, ``tpe`` (Bayesian,
    seeded, with constant liar so that trials asked side by side differ) and ``cmaes`` (only for
    ranges, no lists: CMA-ES models a continuous space).

Objectives (minimised; function labs have no validation split, their loss stands in)
    ``final_val_loss``, ``best_val_loss``, ``auc`` (area under the training-loss curve divided by
    the steps: the mean loss, so fast *and* low wins) and ``steps_to_target`` (first step whose
    validation loss is <= target; ``steps + 1`` when never reached). A run that diverges scores
    its worst measured value (no better than where it started); its AUC counts the worst loss
    for the steps it did not get to run.

Pruning
    Median pruning is on by default: about ``PRUNE_CHECKS`` evaluations per run report the
    monitored value (the running mean loss for ``auc``) and a trial below the median of the
    finished trials at the same step is stopped. Seed s reports at steps ``s·(steps+1) + t``,
    so trials are only ever compared on the same seed.

Storage
    In memory (``storage=None``), any Optuna storage URL (``sqlite:///...``, ``postgresql://``,
    ...), or a plain file path (a SQLite file). The CLI defaults to a SQLite file next to the lab.
    Running the same sweep again on the same storage and study adds trials to it (resume after a
    crash); several workers may share one study. A study remembers what it searches (space,
    objective, steps, seeds): opening it with different flags is refused rather than mixing
    incomparable values; the identity includes a digest of the lab (problem, seed and the tuned
    run's fixed settings), so another lab cannot add its numbers to the study either.

Workers and crashes
    Every trial records the worker that runs it (host, pid, process start time). When a worker
    starts, the RUNNING trials of a worker on the same host that no longer exists (killed, even
    with SIGKILL) are marked failed at once; trials of workers on other machines are failed by
    Optuna's heartbeat once they miss it for ``HEARTBEAT_GRACE_S``. Finished trials are never
    lost, and a failed trial never counts as finished: ``total`` (``--total``) runs until the
    study holds that many finished (complete or pruned) trials, so re-running the same command
    after a crash completes the study. Grid points are claimed in the database (a study attribute
    per point and attempt, whose unique key makes the claim atomic on SQLite and PostgreSQL), so
    two workers never train the same point; a failed point is claimed again, once.

Batching (the sweep-throughput benchmark)
    Trials run K at a time (``batch``) as K runs of ONE race of the engine: same data, same
    initial weights, same mini-batches, each trial its own optimizer and schedule. The engine
    trains a race's runs side by side (a `FunctionRace` evaluates all points in one call; a
    `NetworkRace` of a plain MLP trains every run in one batched pass, core/engine/stacked.py), so K
    trials cost far less than K races. A pruned trial is frozen in its race (``alive`` False):
    the engine stops stepping it. The numbers are the engine's own: a trial reopened as a run
    reproduces its curve.

`run_sweep` is a generator of throttled `SweepProgress` (>= 0.05 s apart, plus a final one), so
the GUI iterates it in its worker thread; setting the stop event ends it cleanly: finished trials
stay in the study, the ones in flight are marked failed ("cancelled").

What lives where
    ``space.py`` the search space (`ParamRange`, `parse_param`, `build_search_space`);
    ``spec.py`` what a sweep is asked and reports (`SweepSpec`, `TrialResult`, `SweepProgress`)
    and the checks of a spec; ``objective.py`` the objectives (`objective_value`);
    ``storage.py`` storage URLs and opening a storage (`open_storage`, SQLite tuning, the
    PostgreSQL driver); ``study.py`` the study (its identity, sampler, pruner, `open_study`,
    `StudyRecords`); ``workers.py`` worker liveness (`worker_identity`, `fail_dead_workers`);
    ``grid.py`` grid points claimed once (`GridClaims`); ``session.py`` the bookkeeping of one
    call (`Session`); ``batch.py`` K trials trained side by side (`Batch`); ``run.py`` the sweep
    itself (`Sweep`, `run_sweep`, `sweep`, `best_run`, `trial_rows`); ``fair_race.py`` the fair
    race (`fair_race`); ``playbook.py`` what the Deep Learning Tuning Playbook reads off a
    sweep (`isolation`: the best objective per value of one hyperparameter;
    `boundary_warnings`: a best trial at the edge of its search range). The package holds this
    docstring only: import from the modules.
"""
