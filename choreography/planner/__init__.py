"""The choreography planner: a song analysis and scored candidate moves -> a blueprint.

Public surface: :func:`choreography.planner.planner.plan_choreography`,
:class:`choreography.planner.candidates.MoveCandidate` and
:func:`choreography.planner.candidates.candidate_from_move`,
:class:`choreography.planner.costs.PlannerSettings`,
:func:`choreography.planner.output.video_output`,
the quality figures in :mod:`choreography.planner.quality`, and the one planning pipeline
(request -> candidate moves -> blueprint) the consumer and ``choreo plan`` share,
:class:`choreography.planner.pipeline.PlanningPipeline`. Everything except ``offline`` and
``offline_storage`` (the command-line shell: files, database, analysis, storage) is pure.
See ``docs/PLANNER.md``.
"""
