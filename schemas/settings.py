"""Settings, each read from one environment variable with a documented default.

Every deployable composes the groups it needs in its composition root; nothing reads the
environment at import time. Every variable here is listed in ``.env.example`` (a test checks).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.blueprint import MAX_SONG_DURATION_S
from schemas.song_limits import (
    DEFAULT_MAX_SONG_BYTES,
    DEFAULT_MAX_SONG_SECONDS,
    DEFAULT_SONG_SOURCES,
    SongLimits,
    SongSources,
)


def beside_the_checkout(value: Path) -> Path:
    """A relative path that is not under the working directory, looked for from the checkout
    (the folder holding ``schemas/``) instead, when it exists there; else ``value`` unchanged."""
    if value.is_absolute() or value.exists():
        return value
    checkout = Path(__file__).resolve().parents[1] / value
    return checkout if checkout.exists() else value


class _Group(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class CoreSettings(_Group):
    """Where choreo keeps local state, and how it logs."""

    data_dir: Path = Field(Path(".choreo"), validation_alias="CHOREO_DATA_DIR")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(True, validation_alias="LOG_JSON")


class DatabaseSettings(_Group):
    """PostgreSQL connection; empty ``DATABASE_URL`` means the embedded server (demo only)."""

    database_url: str = Field("", validation_alias="DATABASE_URL")
    pool_min_size: int = Field(1, ge=0, validation_alias="DB_POOL_MIN_SIZE")
    pool_max_size: int = Field(5, ge=1, validation_alias="DB_POOL_MAX_SIZE")
    connect_timeout_s: float = Field(10.0, gt=0, validation_alias="DB_CONNECT_TIMEOUT")


class PubSubSettings(_Group):
    """Google Cloud Pub/Sub (or its emulator, when ``PUBSUB_EMULATOR_HOST`` is set)."""

    project_id: str = Field(
        "choreo-local",
        validation_alias=AliasChoices("PUBSUB_PROJECT_ID", "GOOGLE_CLOUD_PROJECT"),
    )
    emulator_host: str = Field("", validation_alias="PUBSUB_EMULATOR_HOST")


class StorageSettings(_Group):
    """Object storage: a local directory, or Cloud Storage (or its emulator)."""

    backend: str = Field("local", pattern="^(local|gcs)$", validation_alias="STORAGE_BACKEND")
    local_root: Path = Field(Path(".choreo/storage"), validation_alias="STORAGE_ROOT")
    emulator_host: str = Field("", validation_alias="STORAGE_EMULATOR_HOST")
    songs_bucket: str = Field("choreo-songs", validation_alias="SONGS_BUCKET")
    moves_bucket: str = Field("choreo-moves", validation_alias="MOVES_BUCKET")
    videos_bucket: str = Field("choreo-videos", validation_alias="VIDEOS_BUCKET")
    blueprints_bucket: str = Field("choreo-blueprints", validation_alias="BLUEPRINTS_BUCKET")


class SongSettings(_Group):
    """Which songs may be analysed: their sources, size and duration (``schemas.song_limits``)."""

    # Comma-separated gs://BUCKET/[PREFIX/], BUCKET, relative PREFIX/ or file:///DIR/ entries.
    sources: str = Field(DEFAULT_SONG_SOURCES, validation_alias="SONG_SOURCES")
    max_bytes: int = Field(DEFAULT_MAX_SONG_BYTES, ge=1, validation_alias="MAX_SONG_BYTES")
    max_seconds: float = Field(
        DEFAULT_MAX_SONG_SECONDS, gt=0, le=MAX_SONG_DURATION_S, validation_alias="MAX_SONG_SECONDS"
    )
    # The blueprint worker analyses a song in a child process stopped after this long (a
    # 20-minute song takes a few seconds); 0 analyses in the worker's own thread, unbounded.
    analysis_timeout_s: float = Field(300.0, ge=0, validation_alias="ANALYSIS_TIMEOUT_S")

    @field_validator("sources")
    @classmethod
    def _parses(cls, value: str) -> str:
        SongSources.parse(value)
        return value

    def limits(self) -> SongLimits:
        """The limits these settings describe."""
        return SongLimits(SongSources.parse(self.sources), self.max_bytes, self.max_seconds)


class StackSettings(_Group):
    """Ports and data directory of the local stack started by ``choreo stack up``."""

    stack_dir: Path = Field(Path(".choreo/stack"), validation_alias="STACK_DIR")
    pg_port: int = Field(54329, validation_alias="STACK_PG_PORT")
    pubsub_port: int = Field(8085, validation_alias="STACK_PUBSUB_PORT")
    gcs_port: int = Field(9023, validation_alias="STACK_GCS_PORT")


class VectorSearchSettings(_Group):
    """Move embeddings, the FAISS index over them, and its per-process cache."""

    top_k: int = Field(20, ge=1, validation_alias="VECTOR_SEARCH_TOP_K")
    index_kind: str = Field(
        "auto", pattern="^(auto|flat|ivf|hnsw)$", validation_alias="FAISS_INDEX_KIND"
    )
    ivf_min_moves: int = Field(20000, ge=1, validation_alias="FAISS_IVF_MIN_MOVES")
    ivf_nlist: int = Field(0, ge=0, validation_alias="FAISS_IVF_NLIST")
    nprobe: int = Field(16, ge=1, validation_alias="FAISS_NPROBE")
    hnsw_m: int = Field(32, ge=4, validation_alias="FAISS_HNSW_M")
    hnsw_ef_search: int = Field(128, ge=1, validation_alias="FAISS_HNSW_EF_SEARCH")
    use_gpu: bool = Field(False, validation_alias="FAISS_USE_GPU")
    subset_max_fraction: float = Field(
        0.05, ge=0, le=1, validation_alias="VECTOR_SEARCH_SUBSET_MAX_FRACTION"
    )
    subset_max_moves: int = Field(5000, ge=0, validation_alias="VECTOR_SEARCH_SUBSET_MAX_MOVES")
    cache_ttl_s: float = Field(3600.0, gt=0, validation_alias="MOVE_EMBEDDINGS_CACHE_TTL")
    version_check_s: float = Field(
        30.0, ge=0, validation_alias="MOVE_LIBRARY_VERSION_CHECK_INTERVAL"
    )
    local_text_embedding_dim: int = Field(384, ge=16, validation_alias="LOCAL_TEXT_EMBEDDING_DIM")
    gemini_api_key: SecretStr = Field(SecretStr(""), validation_alias="GEMINI_API_KEY")
    gemini_embedding_model: str = Field(
        "gemini-embedding-001", validation_alias="GEMINI_EMBEDDING_MODEL"
    )
    gemini_embedding_dim: int = Field(768, ge=1, validation_alias="GEMINI_EMBEDDING_DIM")
    gemini_base_url: str = Field("", validation_alias="GEMINI_BASE_URL")


class PublisherSettings(_Group):
    """How the Pub/Sub publisher batches messages, and how long a publish may take."""

    batch_max_messages: int = Field(
        100, ge=1, le=1000, validation_alias="PUBSUB_BATCH_MAX_MESSAGES"
    )
    batch_max_bytes: int = Field(
        1_000_000, ge=1, le=10_000_000, validation_alias="PUBSUB_BATCH_MAX_BYTES"
    )
    batch_max_latency_s: float = Field(0.01, ge=0, validation_alias="PUBSUB_BATCH_MAX_LATENCY")
    publish_timeout_s: float = Field(30.0, gt=0, validation_alias="PUBSUB_PUBLISH_TIMEOUT")


class WorkerSettings(_Group):
    """A pull worker: flow control, lease extension, shutdown grace and its health endpoint."""

    # Messages in hand at once, never more than the database pool can serve beside the relay
    # and the recoverer (the runtime caps it at DB_POOL_MAX_SIZE - 2, with a warning).
    max_messages: int = Field(3, ge=1, validation_alias="WORKER_MAX_MESSAGES")
    max_lease_duration_s: float = Field(3600.0, gt=0, validation_alias="WORKER_MAX_LEASE_DURATION")
    # streaming: the client library's streaming pull; unary: pull only as many messages as there
    # are free handler slots; auto: unary on the Pub/Sub emulator (which ignores a stream's flow
    # control and keeps feeding dead streams), streaming on Google Cloud.
    pull_mode: str = Field(
        "auto", pattern="^(auto|streaming|unary)$", validation_alias="WORKER_PULL_MODE"
    )
    lease_extension_s: int = Field(0, ge=0, le=600, validation_alias="WORKER_LEASE_EXTENSION")
    shutdown_grace_s: float = Field(25.0, ge=0, validation_alias="WORKER_SHUTDOWN_GRACE")
    health_host: str = Field("127.0.0.1", validation_alias="WORKER_HEALTH_HOST")
    health_port: int = Field(8081, ge=0, le=65535, validation_alias="WORKER_HEALTH_PORT")


class PushAuthSettings(_Group):
    """Verification of the Google-signed OIDC token on push and Eventarc requests."""

    # On unless switched off explicitly; on, the audience and service account must be set.
    enabled: bool = Field(True, validation_alias="PUSH_AUTH_ENABLED")
    audience: str = Field("", validation_alias="PUSH_AUTH_AUDIENCE")
    service_account_email: str = Field("", validation_alias="PUSH_AUTH_SERVICE_ACCOUNT")
    certs_url: str = Field(
        "https://www.googleapis.com/oauth2/v1/certs", validation_alias="PUSH_AUTH_CERTS_URL"
    )


class JobSettings(_Group):
    """The video job: where its blueprint comes from, its caches, FFmpeg and publishing."""

    blueprint_json: str = Field("", validation_alias="BLUEPRINT_JSON")
    blueprint_uri: str = Field("", validation_alias="BLUEPRINT_URI")
    task_id: str = Field("", validation_alias="JOB_TASK_ID")
    # The execution this run is (set by the launcher); the job touches only a task recorded
    # with this name. Empty (a hand-run job): any execution's task.
    execution: str = Field("", validation_alias="JOB_EXECUTION")
    cache_dir: Path = Field(Path(".choreo/cache/job"), validation_alias="JOB_CACHE_DIR")
    work_dir: str = Field("", validation_alias="JOB_WORK_DIR")
    publish: str = Field("direct", pattern="^(direct|outbox)$", validation_alias="JOB_PUBLISH")
    download_workers: int = Field(8, ge=1, le=64, validation_alias="JOB_DOWNLOAD_WORKERS")
    storage_retries: int = Field(3, ge=0, le=10, validation_alias="JOB_STORAGE_RETRIES")
    render_workers: int = Field(2, ge=1, le=16, validation_alias="JOB_RENDER_WORKERS")
    x264_preset: str = Field(
        "veryfast",
        pattern="^(ultrafast|superfast|veryfast|faster|fast|medium)$",
        validation_alias="JOB_X264_PRESET",
    )
    x264_crf: int = Field(21, ge=0, le=51, validation_alias="JOB_X264_CRF")
    prepare_clips: str = Field(
        "auto", pattern="^(auto|always|never)$", validation_alias="JOB_PREPARE_CLIPS"
    )
    font_file: str = Field("", validation_alias="JOB_FONT_FILE")
    ffmpeg_timeout_s: float = Field(900.0, gt=0, validation_alias="JOB_FFMPEG_TIMEOUT")
    progress_interval_s: float = Field(1.0, ge=0, validation_alias="JOB_PROGRESS_INTERVAL")


class ProducerSettings(_Group):
    """The producer service (``choreo request serve``; it listens where ``HttpSettings`` say)."""

    publish_immediately: bool = Field(True, validation_alias="PRODUCER_PUBLISH_IMMEDIATELY")


class DeadLetterSettings(_Group):
    """Dead-letter replay (``choreo dlq``): the per-message replay cap and the default rate."""

    replay_cap: int = Field(3, ge=1, validation_alias="DLQ_REPLAY_CAP")
    replay_rate: float = Field(20.0, gt=0, validation_alias="DLQ_REPLAY_RATE")


class GeminiSettings(_Group):
    """Gemini text generation: description parsing, optional plan refinement (empty key: local)."""

    api_key: SecretStr = Field(SecretStr(""), validation_alias="GEMINI_API_KEY")
    base_url: str = Field("", validation_alias="GEMINI_BASE_URL")
    model: str = Field("gemini-2.5-flash", min_length=1, validation_alias="GEMINI_MODEL")
    timeout_s: float = Field(20.0, gt=0, validation_alias="GEMINI_TIMEOUT")
    max_tries: int = Field(4, ge=1, le=10, validation_alias="GEMINI_MAX_TRIES")
    retry_max_time_s: float = Field(60.0, gt=0, validation_alias="GEMINI_RETRY_MAX_TIME")
    backoff_factor_s: float = Field(0.5, gt=0, validation_alias="GEMINI_BACKOFF_FACTOR")
    refine: bool = Field(False, validation_alias="GEMINI_REFINE")
    """Ask Gemini to revise the planner's move choices (checked by the planner's rules)."""


class BlueprintConsumerSettings(_Group):
    """The blueprint consumer: planning seed, move search breadth, where videos go, variety."""

    seed: int = Field(0, ge=0, validation_alias="BLUEPRINT_SEED")
    candidate_moves: int = Field(40, ge=1, le=500, validation_alias="BLUEPRINT_CANDIDATE_MOVES")
    video_prefix: str = Field("videos", min_length=1, validation_alias="BLUEPRINT_VIDEO_PREFIX")
    # Planner cost per earlier use of a move family outside repeated sections (docs/PLANNER.md).
    variety_penalty: float = Field(2.0, ge=0, validation_alias="PLANNER_VARIETY_PENALTY")
    # Planner cost per metre of pose jump at a cut (docs/PLANNER.md#continuity).
    pose_weight: float = Field(20.0, ge=0, validation_alias="PLANNER_POSE_WEIGHT")


class HttpSettings(_Group):
    """The push / Eventarc HTTP entrypoint (Cloud Run sets ``PORT``)."""

    # All interfaces by default: inside a Cloud Run container the platform's proxy connects.
    host: str = Field("0.0.0.0", validation_alias="HTTP_HOST")  # noqa: S104
    port: int = Field(8080, ge=0, le=65535, validation_alias="PORT")
    shutdown_grace_s: float = Field(25.0, ge=0, validation_alias="HTTP_SHUTDOWN_GRACE")
    max_body_bytes: int = Field(16_000_000, ge=1, validation_alias="HTTP_MAX_BODY_BYTES")


class OutboxSettings(_Group):
    """The outbox relay that consumer processes run next to their handlers."""

    relay_enabled: bool = Field(True, validation_alias="OUTBOX_RELAY_ENABLED")
    batch_size: int = Field(100, ge=1, le=10_000, validation_alias="OUTBOX_BATCH_SIZE")
    poll_interval_s: float = Field(0.5, gt=0, validation_alias="OUTBOX_POLL_INTERVAL")
    # Comma-separated topics this process's relay publishes (empty: every topic). Set it to the
    # topics the service's identity may publish, so no relay locks a row it cannot send.
    topics: str = Field("", validation_alias="OUTBOX_TOPICS")

    @property
    def topic_list(self) -> list[str]:
        """``OUTBOX_TOPICS`` as a list (empty: every topic)."""
        return [topic.strip() for topic in self.topics.split(",") if topic.strip()]


class ReaperSettings(_Group):
    """The task recoverer: how long a task may sit in each state without progress, and then what.

    Past its state's deadline a task is driven on (its last event republished, or its job
    started again) up to ``RECOVERY_MAX_ATTEMPTS`` times, and only then failed. Deadlines come
    from measured stage durations (docs/DISPATCHER.md#recovery): a few times the slowest stage
    seen under load, so a busy but healthy pipeline is never mistaken for a stuck one.
    """

    # 0 disables the loop in long-running processes; `choreo tasks reap` still works.
    interval_s: float = Field(30.0, ge=0, validation_alias="REAPER_INTERVAL")
    # Per-state deadlines in seconds; 0 means tasks in that state are never recovered or failed.
    # Queued tasks may wait behind a backlog in Pub/Sub: theirs is the longest.
    queued_timeout_s: float = Field(1800.0, ge=0, validation_alias="REAPER_QUEUED_TIMEOUT")
    stage_timeout_s: float = Field(300.0, ge=0, validation_alias="REAPER_STAGE_TIMEOUT")
    # Rendering writes progress (the heartbeat) at least every JOB_PROGRESS_INTERVAL.
    rendering_timeout_s: float = Field(600.0, ge=0, validation_alias="REAPER_RENDERING_TIMEOUT")
    max_recoveries: int = Field(3, ge=0, le=20, validation_alias="RECOVERY_MAX_ATTEMPTS")


class DispatcherSettings(_Group):
    """The dispatcher: how it starts the video job (Cloud Run Jobs or a local subprocess)."""

    launcher: str = Field(
        "local", pattern="^(local|cloud-run)$", validation_alias="DISPATCHER_LAUNCHER"
    )
    # Cloud Run caps one environment variable's value at 32768 bytes; stay below it.
    blueprint_env_max_bytes: int = Field(
        28672, ge=1, le=32768, validation_alias="BLUEPRINT_ENV_MAX_BYTES"
    )
    cloud_run_job: str = Field(
        "choreo-video", validation_alias=AliasChoices("CLOUD_RUN_JOB", "VIDEO_JOB_NAME")
    )
    cloud_run_region: str = Field("europe-west1", validation_alias="CLOUD_RUN_REGION")
    cloud_run_project: str = Field("", validation_alias="CLOUD_RUN_PROJECT")
    cloud_run_endpoint: str = Field("", validation_alias="CLOUD_RUN_API_ENDPOINT")
    cloud_run_task_timeout_s: int = Field(
        3600, ge=1, le=604_800, validation_alias="CLOUD_RUN_TASK_TIMEOUT"
    )
    cloud_run_call_timeout_s: float = Field(30.0, gt=0, validation_alias="CLOUD_RUN_CALL_TIMEOUT")
    local_job_concurrency: int = Field(1, ge=1, le=16, validation_alias="LOCAL_JOB_CONCURRENCY")
    local_job_timeout_s: float = Field(1800.0, gt=0, validation_alias="LOCAL_JOB_TIMEOUT")
    # A runner renews its lease on the jobs it watches every third of this; a runner silent for
    # longer is taken for dead and its jobs are adopted (or started again) by another.
    local_job_lease_s: float = Field(15.0, ge=1, validation_alias="LOCAL_JOB_LEASE")
    local_job_log_dir: Path = Field(Path(".choreo/logs/jobs"), validation_alias="LOCAL_JOB_LOG_DIR")
    # The dispatcher process runs a local runner itself; false leaves it to `choreo runner`.
    local_runner_embedded: bool = Field(True, validation_alias="LOCAL_RUNNER_EMBEDDED")
    # Starts (local) or launch calls (Cloud Run) of one execution before its task is failed.
    job_max_attempts: int = Field(3, ge=1, le=20, validation_alias="JOB_MAX_ATTEMPTS")


class DemoSettings(_Group):
    """``choreo demo``: the whole pipeline in one process tree (data under ``CHOREO_DATA_DIR``)."""

    # auto: the Pub/Sub emulator when PUBSUB_EMULATOR_HOST is set, else the in-process bus.
    bus: str = Field("auto", pattern="^(auto|inprocess|pubsub)$", validation_alias="DEMO_BUS")
    song_seconds: float = Field(60.0, ge=15, le=600, validation_alias="DEMO_SONG_SECONDS")
    timeout_s: float = Field(900.0, gt=0, validation_alias="DEMO_TIMEOUT")
    # The demo's video size; its move clips are rendered at it once, so the job never scales them.
    video_size: str = Field(
        "1280x720", pattern=r"^[1-9]\d*x[1-9]\d*$", validation_alias="DEMO_VIDEO_SIZE"
    )

    @field_validator("video_size")
    @classmethod
    def _a_video_size(cls, value: str) -> str:
        """Even sides of 144-4096 pixels, as a request's output must have (H.264 4:2:0)."""
        if any(int(side) % 2 or not 144 <= int(side) <= 4096 for side in value.split("x")):
            raise ValueError(f"must be even sides of 144-4096 pixels, e.g. 1280x720, got {value}")
        return value

    @property
    def video_width_height(self) -> tuple[int, int]:
        """``video_size`` as (width, height)."""
        width, height = self.video_size.split("x")
        return int(width), int(height)

    # The CMU salsa captures the real-motion salsa library is cut from (docs/MOVE_LIBRARY.md).
    salsa_corpus: Path = Field(
        Path("../shared/corpus/cmu-mocap-salsa"), validation_alias="CMU_SALSA_DIR"
    )

    # Build the salsa library from these trials only (comma-separated, e.g. "03,07"); empty: all.
    salsa_trials: str = Field("", pattern=r"^(\d\d(,\d\d)*)?$", validation_alias="CMU_SALSA_TRIALS")

    @field_validator("salsa_corpus")
    @classmethod
    def _corpus_beside_the_checkout(cls, value: Path) -> Path:
        """Looked for beside the checkout too, so ``choreo demo`` works from any directory."""
        return beside_the_checkout(value)


class IngestSettings(_Group):
    """``choreo moves import-video``: the pose extractor's environment, gaps and smoothing.

    The extractor (MediaPipe) runs in an environment of its own (``.venv-ingest``, created by
    ``infra/local/setup.sh``) as a subprocess, so its protobuf and numpy pins never meet the
    project's (docs/MOVE_LIBRARY.md#import-from-video).
    """

    python: Path = Field(Path(".venv-ingest/bin/python"), validation_alias="INGEST_PYTHON")

    @field_validator("python")
    @classmethod
    def _beside_the_checkout(cls, value: Path) -> Path:
        """Looked for in the checkout too, where ``infra/local/setup.sh`` makes ``.venv-ingest``."""
        return beside_the_checkout(value)

    # Frames without a person inside a clip that are interpolated; a longer gap fails the clip.
    max_gap_frames: int = Field(15, ge=0, validation_alias="INGEST_MAX_GAP_FRAMES")
    # Share of a clip's frames that must show a person, or the clip fails.
    min_presence: float = Field(0.8, ge=0, le=1, validation_alias="INGEST_MIN_PRESENCE")
    # One Euro filter: cutoff (Hz) for a still pose, and how fast it opens for a fast limb.
    one_euro_min_cutoff: float = Field(3.0, gt=0, validation_alias="INGEST_ONE_EURO_MIN_CUTOFF")
    one_euro_beta: float = Field(1.0, ge=0, validation_alias="INGEST_ONE_EURO_BETA")
    # People are counted on every Nth frame (several people: warn, or refuse with a flag).
    people_every: int = Field(10, ge=1, validation_alias="INGEST_PEOPLE_EVERY")
    max_fps: float = Field(30.0, ge=0, validation_alias="INGEST_MAX_FPS")
    """Track at most this many frames a second (every k-th frame of a faster clip); 0: all."""
    # Seconds one clip's extraction may take before it is stopped.
    timeout_s: float = Field(900.0, gt=0, validation_alias="INGEST_TIMEOUT")
