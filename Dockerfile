# syntax=docker/dockerfile:1
# One image for every Algotcha process; the command picks the role:
#   docker run IMAGE                          -> algotcha api --host 0.0.0.0 --port 8000
#   docker run IMAGE worker                   -> backtests, one at a time
#   docker run IMAGE notifier                 -> Telegram / email delivery
#   docker run IMAGE migrate                  -> apply database migrations and exit
# No secret is baked in: settings come from the environment at run time, and secrets from
# files named by *_FILE variables (Docker / Compose secrets under /run/secrets).
# deploy/README.md is the deployment guide.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- builder: wheel + venv
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# The exact versions and hashes of every dependency (make lock), in a layer of its own: a
# change to the code alone reuses the installed dependencies.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock

# README.md is optional metadata for the wheel: the wildcard lets the build work without it.
COPY pyproject.toml README.md* ./
COPY algotcha ./algotcha
COPY actors ./actors
COPY engine ./engine
COPY monitoring ./monitoring

# The wheel goes in without dependencies (binary wheels only above: no compiler in the image,
# nothing compiled from an sdist behind our back); pip check fails the build if the lock
# misses one that pyproject names. The runtime stage copies the venv as a whole.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/algotcha-*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall --yes pip \
 && /opt/venv/bin/algotcha --version

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="algotcha" \
      org.opencontainers.image.description="Algotcha backtest queue: api, worker, notifier"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PATH="/opt/venv/bin:${PATH}" \
    DATA_DIR=/var/lib/algotcha/data \
    HEALTHCHECK_URL=http://127.0.0.1:8000/healthz

# A system user with a fixed uid (10001, matched by `user:` in compose and by volume ownership),
# no home directory and no login shell.
RUN groupadd --system --gid 10001 algotcha \
 && useradd --system --uid 10001 --gid algotcha --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin algotcha \
 && install -d -o algotcha -g algotcha -m 0750 /var/lib/algotcha /var/lib/algotcha/data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /var/lib/algotcha
# Bar data (Parquet). Named volume in compose, shared by api (reads datasets) and workers.
VOLUME ["/var/lib/algotcha/data"]

USER 10001:10001

EXPOSE 8000

# No curl in slim images: probe with the standard library. The API answers /healthz;
# worker and notifier containers set HEALTHCHECK_URL to their metrics port instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["algotcha"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
