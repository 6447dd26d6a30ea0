"""Contracts shared by every deployable: events, the blueprint, the topology, settings, errors.

This package imports none of the other choreo packages (checked by import-linter).
"""
