# choreo blueprint: music analysis, FAISS move search, planning, Gemini. The only image with
# numpy, librosa and faiss.
# Build from the repository root:
#   docker build -f infra/docker/blueprint.Dockerfile -t choreo-blueprint .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080 \
    NUMBA_CACHE_DIR=/opt/choreo/numba-cache \
    NUMBA_CPU_NAME=generic

# NUMBA_CACHE_DIR: librosa's numba functions cache compiled code there; `choreo warmup` fills it
# at build time so a fresh container skips the compile (seconds). NUMBA_CPU_NAME=generic keys the
# cache to no particular CPU, so code built on the build machine is reused on Cloud Run's.
# librosa reads WAV/FLAC/OGG through soundfile and falls back to audioread, which decodes MP3 and
# AAC with ffmpeg.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The wheel holds all four packages (pyproject's hatch target); only the extra decides which
# third-party libraries come along.
# Bytecode is written here, once: PYTHONDONTWRITEBYTECODE stops writes at run time, so a module
# without a .pyc is compiled from source in every fresh container (measured: about 2.5 s for
# numpy, scipy, numba and librosa, 0.4 s for the standard library). pip --compile (its default,
# spelled out) covers site-packages; the python base image deletes the standard library's .pyc
# files, so compileall puts them back.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY lifecycle ./lifecycle
COPY producers ./producers
COPY consumers ./consumers
COPY job ./job
RUN pip install --compile '.[blueprint]' \
    && python -m compileall -q -j 0 /usr/local/lib/python3.11

RUN useradd --system --uid 10001 --no-create-home choreo
# numba needs to write to its cache dir even to read it (it probes with a temporary file).
RUN choreo warmup && chown -R choreo /opt/choreo/numba-cache
USER choreo

# Cloud Run sets PORT; the default above is for docker run and compose.
EXPOSE 8080
CMD ["choreo", "serve", "blueprint"]
