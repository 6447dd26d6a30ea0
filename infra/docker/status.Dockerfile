# choreo status: records video.completed / task.failed in the task table. Needs the base install,
# the HTTP server (push/Eventarc), psycopg and Pub/Sub: the service extra.
# Build from the repository root:
#   docker build -f infra/docker/status.Dockerfile -t choreo-status .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080

WORKDIR /app
# The wheel holds all four packages (pyproject's hatch target); only the extra decides which
# third-party libraries come along.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY lifecycle ./lifecycle
COPY producers ./producers
COPY consumers ./consumers
COPY job ./job
RUN pip install '.[service]'

RUN useradd --system --uid 10001 --no-create-home choreo
USER choreo

# Cloud Run sets PORT; the default above is for docker run and compose.
EXPOSE 8080
CMD ["choreo", "serve", "status"]
