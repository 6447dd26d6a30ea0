"""Music analysis for the blueprint consumer.

Tempo, beats, downbeats, 8-count phrases, sections and energy of a song.

The public surface is :func:`consumers.music.analysis.analyse_file`,
:func:`consumers.music.analysis.analyse_samples` and the :class:`consumers.music.model.SongAnalysis`
model; :mod:`consumers.music.synth` makes test and demo songs with known ground truth.
"""
