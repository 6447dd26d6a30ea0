-- 0001_initial: tasks and their history, the song analysis cache, the move library with its
-- embeddings, blueprints, the transactional outbox, consumer dedupe records and the dead-letter
-- replay audit. Applied in one transaction by producers/migrations.py; never edit once applied
-- (the runner refuses a changed checksum): add a new numbered file instead.

-- Keeps updated_at honest whichever code path writes the row.
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- One row per choreography request. State moves only by compare-and-set along the edges in
-- schemas/task_state.py; the CHECK keeps even hand-written SQL to known states.
CREATE TABLE tasks (
    task_id         text PRIMARY KEY CHECK (task_id <> ''),
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN (
                        'queued', 'analyzing', 'planned', 'dispatched', 'rendering',
                        'completed', 'failed')),
    path            text NOT NULL CHECK (path IN ('song', 'describe')),
    request         jsonb NOT NULL,
    song_id         text,
    error           text,
    error_stage     text,
    execution_name  text,
    video_uri       text,
    progress        real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 100),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- A finished task says where its video is; a failed one says why.
    CONSTRAINT tasks_completed_has_video CHECK (state <> 'completed' OR video_uri IS NOT NULL),
    CONSTRAINT tasks_failed_has_error CHECK (state <> 'failed' OR error IS NOT NULL)
);
CREATE INDEX tasks_state_idx ON tasks (state) WHERE state NOT IN ('completed', 'failed');
CREATE TRIGGER tasks_touch BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Every state change, written in the same transaction as the change (from_state is NULL for
-- the creation row).
CREATE TABLE task_history (
    id          bigserial PRIMARY KEY,
    task_id     text NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    from_state  text,
    to_state    text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    detail      jsonb
);
CREATE INDEX task_history_task_idx ON task_history (task_id, id);

-- Cached music analysis, keyed by the audio content hash so the same audio uploaded twice is
-- analysed once. analysis_version says which analyser produced `analysis` (re-run when older).
CREATE TABLE songs (
    song_id           text PRIMARY KEY CHECK (song_id <> ''),
    title             text NOT NULL DEFAULT '',
    audio_uri         text NOT NULL,
    content_sha256    text NOT NULL UNIQUE CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    duration_s        real CHECK (duration_s > 0),
    tempo_bpm         real CHECK (tempo_bpm > 0),
    style             text,
    energy            real CHECK (energy >= 0 AND energy <= 1),
    analysis          jsonb,
    analysis_version  integer,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER songs_touch BEFORE UPDATE ON songs
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- The move library. Keypoints are little-endian float32 arrays of shape (frames, joints,
-- channels) stored as bytea (compact, and readable without numpy), channels being 2 (x, y) or
-- 3 (x, y, confidence); start/end poses are (joints, channels).
CREATE TABLE moves (
    move_id      text PRIMARY KEY CHECK (move_id <> ''),
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    style        text NOT NULL,
    difficulty   text NOT NULL CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')),
    energy       real NOT NULL CHECK (energy >= 0 AND energy <= 1),
    tempo_bpm    real CHECK (tempo_bpm > 0),
    counts       integer NOT NULL CHECK (counts > 0),
    clip_uri     text NOT NULL,
    tags         text[] NOT NULL DEFAULT '{}',
    keypoints    bytea,
    frames       integer CHECK (frames > 0),
    joints       integer CHECK (joints > 0),
    fps          real CHECK (fps > 0),
    channels     smallint NOT NULL DEFAULT 2 CHECK (channels IN (2, 3)),
    start_pose   bytea,
    end_pose     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- Keypoints come with their shape, and the bytes match it (4 bytes per float32).
    CONSTRAINT moves_keypoints_shape CHECK (
        keypoints IS NULL
        OR (frames IS NOT NULL AND joints IS NOT NULL AND fps IS NOT NULL
            AND octet_length(keypoints) = 4 * channels * frames * joints)),
    CONSTRAINT moves_start_pose_shape CHECK (
        start_pose IS NULL
        OR (joints IS NOT NULL AND octet_length(start_pose) = 4 * channels * joints)),
    CONSTRAINT moves_end_pose_shape CHECK (
        end_pose IS NULL
        OR (joints IS NOT NULL AND octet_length(end_pose) = 4 * channels * joints))
);
CREATE INDEX moves_filter_idx ON moves (style, difficulty);
CREATE TRIGGER moves_touch BEFORE UPDATE ON moves
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- One vector per move and kind; `space` names the embedding model so vectors from different
-- models are never compared. vector is little-endian float32, dim values.
CREATE TABLE move_embeddings (
    move_id  text NOT NULL REFERENCES moves (move_id) ON DELETE CASCADE,
    kind     text NOT NULL CHECK (kind IN ('pose', 'rhythm', 'text')),
    space    text NOT NULL CHECK (space <> ''),
    dim      integer NOT NULL CHECK (dim > 0),
    vector   bytea NOT NULL,
    CONSTRAINT move_embeddings_vector_length CHECK (octet_length(vector) = 4 * dim),
    PRIMARY KEY (move_id, kind)
);

-- A single row whose version changes whenever the library does, so a process holding a FAISS
-- index built from it can poll one cheap row and rebuild only when it moved.
CREATE TABLE move_library (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version     bigint NOT NULL DEFAULT 0,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO move_library DEFAULT VALUES;

CREATE FUNCTION bump_move_library_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE move_library SET version = version + 1, changed_at = now();
    RETURN NULL;
END;
$$;
-- Per statement, not per row: a bulk load bumps once per statement, not once per move. A
-- statement touching no rows still bumps, which only costs pollers a spurious rebuild.
CREATE TRIGGER moves_bump_library AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON moves
    FOR EACH STATEMENT EXECUTE FUNCTION bump_move_library_version();
CREATE TRIGGER move_embeddings_bump_library
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON move_embeddings
    FOR EACH STATEMENT EXECUTE FUNCTION bump_move_library_version();

-- The plan for one task: the primary key makes a redelivered event unable to store a second.
CREATE TABLE blueprints (
    task_id         text PRIMARY KEY REFERENCES tasks (task_id) ON DELETE CASCADE,
    schema_version  text NOT NULL,
    document        jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: events written in the same transaction as the state they announce,
-- published later by the relay. `data` is the exact bytes to publish.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      text NOT NULL UNIQUE,
    topic         text NOT NULL,
    ordering_key  text NOT NULL DEFAULT '',
    attributes    jsonb NOT NULL DEFAULT '{}',
    data          bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error    text
);
-- The relay only ever scans unpublished rows, oldest first.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- Dedupe records: a consumer inserts (consumer, CloudEvent id) in the same transaction as its
-- effect, so a redelivered event is recognised and acknowledged without repeating the effect.
CREATE TABLE processed_events (
    consumer      text NOT NULL,
    event_id      text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- One row for every dead-lettered message the replay tool touches, whatever it did with it.
CREATE TABLE dlq_replay_audit (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL,
    action        text NOT NULL CHECK (action IN ('replay', 'purge', 'dry-run', 'refused')),
    subscription  text NOT NULL,
    message_id    text NOT NULL,
    event_id      text,
    to_topic      text,
    outcome       text NOT NULL,
    detail        jsonb
);
CREATE INDEX dlq_replay_audit_event_idx ON dlq_replay_audit (event_id);
