# The video job: python -m job. Build from the repository root:
#   docker build -f infra/docker/job.Dockerfile -t choreo-job .
# Layers go from least to most often changed: OS packages, then the job's dependencies (from
# pyproject.toml only), then the source. A source edit rebuilds only the last two small layers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    JOB_CACHE_DIR=/tmp/choreo-cache \
    STORAGE_BACKEND=gcs

# Debian's ffmpeg (with libx264, drawtext/libfreetype) and a font for the overlays.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies of the base install and the `job` extra only (no numpy, librosa, faiss, genai,
# run). A stub package lets pip resolve them from pyproject.toml before the source is copied.
COPY pyproject.toml README.md ./
RUN mkdir -p schemas lifecycle producers consumers job \
    && touch schemas/__init__.py lifecycle/__init__.py producers/__init__.py consumers/__init__.py job/__init__.py \
    && pip install ".[job]" \
    && pip uninstall -y choreo

# The code the job imports: the contracts and the job itself.
COPY schemas ./schemas
COPY lifecycle ./lifecycle
COPY job ./job

RUN useradd --create-home --uid 10001 choreo \
    && mkdir -p /tmp/choreo-cache && chown choreo /tmp/choreo-cache
USER choreo

ENTRYPOINT ["python", "-m", "job"]
