# choreo dispatcher: starts one Cloud Run Job execution per blueprint.ready (google-cloud-run on
# top of the job extra).
# Build from the repository root:
#   docker build -f infra/docker/dispatcher.Dockerfile -t choreo-dispatcher .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080

# Locally (compose) the dispatcher runs the video job as a subprocess, which needs ffmpeg; on
# Cloud Run it starts a Cloud Run Job instead, so the production image leaves ffmpeg out.
ARG INSTALL_FFMPEG=false
RUN if [ "$INSTALL_FFMPEG" = "true" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends ffmpeg \
        && rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /app
# The wheel holds all four packages (pyproject's hatch target); only the extra decides which
# third-party libraries come along.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY lifecycle ./lifecycle
COPY producers ./producers
COPY consumers ./consumers
COPY job ./job
RUN pip install '.[dispatcher]'

RUN useradd --system --uid 10001 --no-create-home choreo
USER choreo

# Cloud Run sets PORT; the default above is for docker run and compose.
EXPOSE 8080
CMD ["choreo", "serve", "dispatcher"]
