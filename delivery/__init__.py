"""How every deployable receives a delivery and answers it.

Shared by the producer's HTTP service and the consumers' runtime, so each rule is written once:
:mod:`delivery.error_mapping` turns outcomes and errors into ack/nack and HTTP status codes,
:mod:`delivery.oidc` checks the Google-signed token of Pub/Sub push and Eventarc, and
:mod:`delivery.http` reads a bounded body. It imports only ``schemas``, ``lifecycle`` and the
HTTP and auth libraries.
"""
