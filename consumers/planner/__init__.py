"""The choreography planner: a song analysis and scored candidate moves -> a blueprint.

Public surface: :func:`consumers.planner.planner.plan_choreography`,
:class:`consumers.planner.candidates.MoveCandidate` and
:func:`consumers.planner.candidates.candidate_from_move`,
:class:`consumers.planner.costs.PlannerSettings`, :func:`consumers.planner.output.video_output`,
and the quality figures in :mod:`consumers.planner.quality`. Everything except ``offline`` and
``offline_storage`` (the command-line shell: files, database, analysis, storage) is pure.
See ``docs/PLANNER.md``.
"""
