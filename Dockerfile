# svc container image: two stages, uv to install, a slim non-root runtime that works on a read-only root fs.
#
#   docker build -t svc .            (or `docker compose build`; no build args needed)
#
# Build info (commit, commit time, dirty flag) is stamped by hatch_build.py while the wheel is built, from the
# .git directory in the build context. That is why .dockerignore keeps .git and excludes only files git ignores:
# excluding a tracked file would make the stamp say "dirty" for a clean checkout.

# One pinned base for both stages, so the venv's interpreter path in the builder exists in the runtime too.
ARG PYTHON_IMAGE=python:3.13.18-slim-trixie

# ---------------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

# git: the build hook reads the commit from .git. Nothing from this stage but /opt/venv reaches the runtime image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

# uv from PyPI (pip is in the base image), pinned; a registry we can verify rather than another image.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

WORKDIR /src

# Dependencies first, from the lockfile only: this layer is reused until uv.lock or pyproject.toml change.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Then the project itself, built as a real wheel (not editable) so the build hook writes svc/_build_info.json.
# `python -I` below imports the installed package (not /src/svc) and prints what was stamped, into the build log.
COPY . .
RUN uv sync --frozen --no-dev --no-editable \
    && /opt/venv/bin/python -I -c "import svc.buildinfo as b; print('stamped:', b.read_build_info())"

# ---------------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# A fixed non-root uid/gid (compose and Kubernetes refer to 10001); /data is the only writable path it needs.
RUN groupadd --system --gid 10001 svc \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin svc \
    && install -d -o 10001 -g 10001 -m 0750 /data

COPY --from=builder /opt/venv /opt/venv

# Bytecode was compiled at install time, so nothing writes .pyc at run time (read-only root fs).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    ADMIN_HOST=0.0.0.0 \
    ADMIN_PORT=9000 \
    LOG_FORMAT=json \
    DATABASE_PATH=/data/svc.db

USER 10001:10001
WORKDIR /data
EXPOSE 8000 9000

# No curl in slim images: the stdlib probes /healthz on whatever PORT the container was given.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=2)"]

ENTRYPOINT ["svc"]
