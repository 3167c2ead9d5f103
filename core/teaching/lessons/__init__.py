"""Lessons: a lab (or a few) plus a short text, and machine-checked claims about what it shows.

A lesson lives in ``resources/lessons/<name>/`` as data, not code (docs/lessons.md)::

    lesson.json       {"format": "descent-lesson/1", "name": "ravine", "title": ..., "lab": ...,
                       "summary": ..., "notice": [...], "why": ..., "question": ...,
                       "hide_panels": [...], "claims": [...]}
    lesson.lab.json   an ordinary lab file (or several, named in "lab" as a list)

Every sentence of a lesson's text that states a measurable fact ("momentum reaches f < 1e-3 in
fewer steps than SGD") has a matching *claim*: a small JSON object that `check.check_claims`
verifies by running the lesson's labs headless with the very engines the GUI uses
(core/engine/factory.py picks the race for each lab). ``python main.py lessons check`` and
tests/core/test_lessons.py run them all, so a lesson cannot drift away from what the app shows.

Where things live:

- lesson.py: the loaded data, `Lesson` and its `Claim` s.
- loader.py: reading lesson.json and its labs (`load_lesson`, `list_lessons`, `LESSONS_DIR`).
- validate.py: checking a claim's fields (each raises `LabError` naming the field).
- trace.py: `RunTrace`, what claims read of a lab's run, and `trace_labs` that runs the labs.
- claim_kind.py: `ClaimKind` (fields, sentence, check) and the helpers every kind shares;
  wording.py: how a claim's numbers and runs are written.
- The claim kinds, by family, each a check, a sentence and its `ClaimKind` entries:
  loss_claims.py (the loss reached or ended at), path_claims.py (a function lab's point and
  path), step_claims.py (the per-step lr and mini-batch loss), network_claims.py (validation,
  weights, gradients) and sweep_claims.py (Optuna studies of a run).
- registry.py: `CLAIM_KINDS`, every kind by name.
- check.py: `check_claims` and `evaluate_claims`, judging claims into `ClaimResult` s.
"""
