"""The choreography planner: a song analysis and scored candidate moves -> a blueprint.

Public surface: :func:`choreography.planner.planner.plan_choreography`,
:class:`choreography.planner.candidates.MoveCandidate` and
:func:`choreography.planner.candidates.candidate_from_move`,
:class:`choreography.planner.costs.PlannerSettings`,
:func:`choreography.planner.output.video_output`,
and the quality figures in :mod:`choreography.planner.quality`. Everything except ``offline`` and
``offline_storage`` (the command-line shell: files, database, analysis, storage) is pure.
See ``docs/PLANNER.md``.
"""
