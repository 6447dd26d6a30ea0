-- 0002_durable_jobs: the video job's executions as durable rows, task recovery counts, and a
-- retry clock on outbox rows. Applied in one transaction by producers/migrations.py.

-- One execution per task, recorded by the dispatcher in the same transaction as
-- planned -> dispatched, before anything is launched. The primary key is the "exactly one
-- execution per task" rule; execution_name is deterministic (a redelivery computes the same).
--   queued    recorded, not started (local: waiting for a runner; cloud-run: not launched yet)
--   running   local: a runner holds it (lease_until, renewed by heartbeats) and it has a pid
--   launched  cloud-run: run_job returned; remote_name is the Execution
--   exited    the process ended (exit_code), or the launch is finished with
CREATE TABLE job_executions (
    task_id         text PRIMARY KEY REFERENCES tasks (task_id) ON DELETE CASCADE,
    execution_name  text NOT NULL UNIQUE CHECK (execution_name <> ''),
    launcher        text NOT NULL CHECK (launcher IN ('local', 'cloud-run')),
    -- The execution's own variables (BLUEPRINT_JSON or BLUEPRINT_URI, JOB_TASK_ID, ...).
    env             jsonb NOT NULL DEFAULT '{}',
    state           text NOT NULL DEFAULT 'queued'
                        CHECK (state IN ('queued', 'running', 'launched', 'exited')),
    -- Starts (local) or launch calls (cloud-run) so far; bounded by JOB_MAX_ATTEMPTS.
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    runner          text,
    host            text,
    pid             integer,
    -- The process's start time in clock ticks (/proc/PID/stat), so a reused pid is never
    -- mistaken for the job.
    pid_started     bigint,
    lease_until     timestamptz,
    exit_code       integer,
    last_error      text,
    log_path        text,
    remote_name     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_executions_open_idx ON job_executions (created_at)
    WHERE state IN ('queued', 'running');
CREATE TRIGGER job_executions_touch BEFORE UPDATE ON job_executions
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- How many times the recoverer drove a stuck task on (republished its event, relaunched its
-- job); bounded by RECOVERY_MAX_ATTEMPTS, then the task is failed with a reason.
ALTER TABLE tasks ADD COLUMN recoveries integer NOT NULL DEFAULT 0 CHECK (recoveries >= 0);

-- A row that failed to publish waits before its next try (exponential, capped), so rows that
-- cannot go out do not fill every batch of every relay run.
ALTER TABLE outbox ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now();
DROP INDEX outbox_unpublished_idx;
CREATE INDEX outbox_unpublished_idx ON outbox (topic, id) WHERE published_at IS NULL;
