-- 0003_rejected_messages: deliveries that can never be handled (poison), kept for operators.
-- Applied in one transaction by producers/migrations.py.

-- A message that does not decode, or a body over the size limit, is acknowledged (a 2xx on push
-- and Eventarc, an ack on pull) so the transport stops retrying it, and recorded here with its
-- reason. The same bytes delivered again to the same receiver bump `deliveries` instead of
-- adding a row, so a sender stuck in a loop cannot fill the table. `choreo rejected` lists them.
CREATE TABLE rejected_messages (
    id              bigserial PRIMARY KEY,
    receiver        text NOT NULL CHECK (receiver <> ''),  -- consumer name, or 'producer'
    transport       text NOT NULL,  -- pull, push, or the HTTP path that received it
    body_sha256     text NOT NULL CHECK (body_sha256 ~ '^[0-9a-f]{64}$'),
    body_bytes      bigint NOT NULL CHECK (body_bytes >= 0),
    reason          text NOT NULL CHECK (reason <> ''),
    -- The first bytes of the body as text (invalid UTF-8 and control characters escaped).
    excerpt         text NOT NULL DEFAULT '',
    -- Pub/Sub attributes, or the CloudEvent and content headers (never Authorization).
    headers         jsonb NOT NULL DEFAULT '{}',
    message_id      text,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    deliveries      integer NOT NULL DEFAULT 1 CHECK (deliveries >= 1),
    UNIQUE (receiver, body_sha256)
);
CREATE INDEX rejected_messages_last_seen_idx ON rejected_messages (last_seen_at DESC);
