# choreo producer: the request API and the Cloud Storage trigger; publishes
# choreography.requested. Needs the base install, the HTTP server and psycopg, Pub/Sub and Cloud
# Storage: the service extra.
# Build from the repository root:
#   docker build -f infra/docker/producer.Dockerfile -t choreo-producer .
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
CMD ["choreo", "serve", "producer"]
