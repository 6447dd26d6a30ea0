"""The three consumers (blueprint, dispatcher, status recorder) and their runtime.

Each consumer is a deployable: a handler, its composition root (``app.py``) and
``python -m consumers.<name>`` to serve it. Nothing imports this package except the command line
(``choreo_cli``), which is the outermost layer (checked by import-linter).
"""
