"""Move embeddings, vector search over the move library, and the per-process index cache.

Public surface: ``embeddings`` (embed a move), ``embedding_store`` (PostgreSQL), ``search``
(``MoveIndex``, ``MoveFilter``), ``cache`` (``MoveIndexCache``). Nothing here connects or loads
an index at import time.
"""
