"""Consumers: the blueprint consumer, the dispatcher, the status recorder, and the CLI.

Nothing imports this package (checked by import-linter); it is the outermost layer.
"""
