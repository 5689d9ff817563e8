# Parley's server image: `parley serve` on the bundles baked in at /app/bundles, the live-caption page at /.
#
#   docker build -t parley .                                       # GPU image: CUDA 13 + cuDNN 9 runtime
#   docker run --gpus all -p 8000:8000 parley                      # CUDA when the container has a GPU,
#   docker run -p 8000:8000 parley                                 # the CPU otherwise (server/providers.py probes)
#   docker build -t parley:cpu --build-arg BASE=ubuntu:24.04 .     # CPU-only variant: no CUDA libraries in it
#   docker stop -t 40 CONTAINER                                    # SIGTERM drains open streams (up to 30 s here)
#
# Settings are PARLEY_* variables (`parley serve --help`): docker run -e PARLEY_API_KEYS=... -e PARLEY_MAX_BATCH=64.
# onnxruntime-gpu's CUDA provider needs the CUDA and cuDNN majors it was built with (onnxruntime-gpu 1.31 on PyPI:
# CUDA 13.x, cuDNN 9.x, https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html#requirements),
# so BASE and ORT_VERSION change together. The host needs the NVIDIA driver (>= 580 for CUDA 13) and the NVIDIA
# Container Toolkit for --gpus.
ARG BASE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
FROM ${BASE}

ARG ORT_VERSION=1.31.1
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/parley/bin:$PATH

# libopus0 and libfaad2 decode browsers' Opus and AAC streams; espeak-ng lets `parley hotwords learn` run in the image
# (it speaks the hotwords to the bundle; about 10 MB).
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates libopus0 libfaad2 espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/parley

WORKDIR /app

# The runtime dependencies (no torch) in a layer of their own, read from pyproject.toml: code changes reuse it.
COPY pyproject.toml README.md ./
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt "onnxruntime-gpu==${ORT_VERSION}" \
    && rm /tmp/requirements.txt

COPY parley ./parley
COPY server ./server
COPY clients ./clients
COPY models ./models
COPY export ./export
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/parley parley

# The models: every bundle folder (bundle.json + ONNX files + tokens) under bundles/.
COPY bundles ./bundles

ENV PARLEY_HOST=0.0.0.0 \
    PARLEY_PORT=8000 \
    PARLEY_BUNDLES=/app/bundles \
    PARLEY_DRAIN_TIMEOUT_S=30
USER parley
EXPOSE 8000
# Home Assistant's Wyoming protocol, when PARLEY_WYOMING_PORT=10300 is set (docs/wyoming.md)
EXPOSE 10300
# Asterisk's AudioSocket, when PARLEY_AUDIOSOCKET_PORT=9092 is set (docs/asterisk.md)
EXPOSE 9092
# Liveness, with the Python that is there anyway (no curl in the image). Behind TLS (PARLEY_SSL_*) use https.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PARLEY_PORT', '8000'), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["parley", "serve"]
