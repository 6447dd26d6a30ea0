# choreo producer: POST /requests and the songs-bucket upload trigger (python -m producers).
# Build from the repository root:
#   docker build -f infra/docker/producer.Dockerfile -t choreo-producer .
# The image holds exactly the packages the producer imports (tests/unit/test_image_imports.py
# checks the COPY lines against the import graph): no consumers, no job, no command line.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080

WORKDIR /app
# Dependencies first, resolved from pyproject.toml alone: a stub of every package lets pip
# install the extra before any source is copied, then the stub goes again. A source edit
# rebuilds only the COPY layers below; pyproject's readme is an empty stand-in, so an edit of
# README.md does not rerun the install either (measured: the job image 21 s -> 2 s).
COPY pyproject.toml /tmp/stub/
RUN cd /tmp/stub \
    && touch README.md \
    && for p in schemas lifecycle blobstore delivery choreography producers consumers job choreo_cli; do \
        mkdir -p "$p" && touch "$p/__init__.py"; done \
    && pip install '.[service]' \
    && pip uninstall -y choreo \
    && rm -rf /tmp/stub

COPY schemas ./schemas
COPY lifecycle ./lifecycle
COPY blobstore ./blobstore
COPY delivery ./delivery
COPY producers ./producers

RUN useradd --system --uid 10001 --no-create-home choreo
USER choreo

EXPOSE 8080
CMD ["python", "-m", "producers"]
