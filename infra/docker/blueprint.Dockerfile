# choreo blueprint: music analysis, FAISS move search, planning, Gemini (python -m
# consumers.blueprint_consumer; `worker` as the argument pulls instead of serving push). The only
# image with numpy, librosa and faiss.
# Build from the repository root:
#   docker build -f infra/docker/blueprint.Dockerfile -t choreo-blueprint .
# tests/unit/test_image_imports.py checks the COPY lines against the import graph.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080 \
    NUMBA_CACHE_DIR=/opt/choreo/numba-cache \
    NUMBA_CPU_NAME=generic

# NUMBA_CACHE_DIR: librosa's numba functions cache compiled code there; the warm-up below fills
# it at build time so a fresh container skips the compile (seconds). NUMBA_CPU_NAME=generic keys
# the cache to no particular CPU, so code built on the build machine is reused on Cloud Run's.
# Songs are decoded by ffmpeg (consumers' audio_decode), so the image needs it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Bytecode is written here, once: PYTHONDONTWRITEBYTECODE stops writes at run time, so a module
# without a .pyc is compiled from source in every fresh container (measured: about 2.5 s for
# numpy, scipy, numba and librosa, 0.4 s for the standard library). pip --compile covers
# site-packages; the python base image deletes the standard library's .pyc files, so compileall
# puts them back.
# Dependencies first, resolved from pyproject.toml alone: a stub of every package lets pip
# install the extra before any source is copied, then the stub goes again. A source edit
# rebuilds only the COPY layers below; pyproject's readme is an empty stand-in, so an edit of
# README.md does not rerun the install either (measured: the job image 21 s -> 2 s).
COPY pyproject.toml /tmp/stub/
RUN cd /tmp/stub \
    && touch README.md \
    && for p in schemas lifecycle blobstore delivery choreography producers consumers job choreo_cli; do \
        mkdir -p "$p" && touch "$p/__init__.py"; done \
    && pip install --compile '.[blueprint]' \
    && pip uninstall -y choreo \
    && rm -rf /tmp/stub \
    && python -m compileall -q -j 0 /usr/local/lib/python3.11

COPY schemas ./schemas
COPY lifecycle ./lifecycle
COPY blobstore ./blobstore
COPY delivery ./delivery
COPY producers ./producers
COPY consumers/__init__.py consumers/services.py ./consumers/
COPY consumers/runtime ./consumers/runtime
COPY consumers/blueprint_consumer ./consumers/blueprint_consumer
COPY choreography/__init__.py ./choreography/
COPY choreography/music ./choreography/music
COPY choreography/moves ./choreography/moves
COPY choreography/search ./choreography/search
COPY choreography/planner ./choreography/planner

RUN useradd --system --uid 10001 --no-create-home choreo
# Our own modules get their bytecode here too, then the warm-up fills the numba cache; numba
# needs to write to its cache dir even to read it (it probes with a temporary file).
RUN python -m compileall -q /app \
    && python -m consumers.blueprint_consumer.warmup \
    && chown -R choreo /opt/choreo/numba-cache
USER choreo

# Cloud Run sets PORT; the default above is for docker run and compose.
EXPOSE 8080
CMD ["python", "-m", "consumers.blueprint_consumer"]
