"""Music analysis: what the planner needs to know of a song.

Tempo, beats, downbeats, 8-count phrases, sections and energy of a song.

The public surface is :func:`choreography.music.analysis.analyse_file`,
:func:`choreography.music.analysis.analyse_samples` and the
:class:`choreography.music.model.MusicAnalysis` model. The demo's songs with known ground truth
are made by :mod:`choreo_cli.demo.song_synth`.
"""
