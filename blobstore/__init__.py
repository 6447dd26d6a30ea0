"""Object storage every deployable shares: the port, the local root and Cloud Storage.

:mod:`blobstore.storage` holds the :class:`~blobstore.storage.Storage` port and the local
backend, :mod:`blobstore.gcs` the Cloud Storage one, and :mod:`blobstore.configured` picks one
from ``StorageSettings``. It imports only ``schemas`` and the storage client, so the video job's
minimal install carries it unchanged.
"""
