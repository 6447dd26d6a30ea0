"""The choreography domain: music analysis, the move library, move search and the planner.

Pure libraries with no I/O at import time; what reads a database or storage takes it as an
argument (a pool, a :class:`blobstore.storage.Storage`). The deployables (``consumers``) and the
command line (``choreo_cli``) compose them; nothing here imports either.
"""
