"""The task lifecycle, in one place: state transitions, failure recording and the outbox insert.

Producers, consumers and the video job all move tasks through these functions, so a rule about
a task's life (a compare-and-set, a history row, the event that announces it) is written once.
The consumers' handlers reach them only through the ports of :mod:`lifecycle.ports`, whose
PostgreSQL adapters (:mod:`lifecycle.unit_of_work`) run on the runtime's connection and inside
its transaction.
It imports only ``schemas`` and psycopg, so the job's small install can use it.
"""
