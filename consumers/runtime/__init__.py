"""The consumer runtime: handlers get typed events; transports, retries and dedupe live here.

Public surface: :class:`EventHandler` and :class:`EventProcessor` (``handler``),
:class:`PullWorker` (``pull_worker``), :func:`create_app` and :func:`serve` (``http_app``),
the error mapping (``error_mapping``), and the composition roots (``bootstrap``).
"""
