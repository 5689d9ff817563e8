# First version: a CPU/GPU-agnostic image of the Parley server (runtime only, no torch).
# onnxruntime-gpu uses CUDA when the container is given a GPU and the CPU otherwise.
# The CUDA base image, baked-in bundles and healthcheck come with the deployment issue.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PARLEY_HOST=0.0.0.0 PARLEY_PORT=8000 PARLEY_BUNDLES=/app/bundles
WORKDIR /app
COPY pyproject.toml README.md ./
COPY parley ./parley
COPY server ./server
COPY models ./models
COPY export ./export
COPY clients ./clients
RUN pip install --no-cache-dir . && useradd --create-home parley
USER parley
EXPOSE 8000
ENTRYPOINT ["parley", "serve"]
