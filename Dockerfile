# syntax=docker/dockerfile:1
# tenx-gateway image:   docker build -t tenx-gateway:latest .
# Runs gunicorn with the shipped gunicorn.conf.py as UID 10001 (`tenx-gateway collect` for the log collector);
# see deploy/README.md.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: wheels of the package and every dependency ------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The dependencies at the lock's versions, each file checked against its hash (make lock writes the lock); all
# publish wheels for CPython 3.11 on linux amd64 and arm64, so no compiler is needed even here.
COPY requirements/gateway.txt ./requirements/
RUN pip wheel --wheel-dir /wheels --require-hashes -r requirements/gateway.txt
# Then the package alone, from only what its build reads (README.md is setup.cfg's long_description, LICENSE goes
# into the wheel; the * keeps the COPY valid if the README is missing).
COPY pyproject.toml setup.cfg LICENSE README.md* ./
COPY gateway ./gateway
RUN pip wheel --wheel-dir /wheels --no-deps .

# ---- runtime ----------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    GATEWAY_BIND=0.0.0.0:8080
# The user, and the log archive's directory (GATEWAY_DATA_DIR); in Kubernetes a volume is mounted there.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gateway \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/tenx-gateway
# Install from the builder's wheels only (never the network: so exactly the lock's versions), then drop the packaging tools the image does not
# need at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels tenx-gateway \
 && pip uninstall --yes setuptools wheel
WORKDIR /app
COPY gunicorn.conf.py wsgi.py ./
# The root filesystem is read-only in the pod (deploy/deployment.yaml) with an emptyDir at /tmp, hence HOME=/tmp:
# gunicorn (>= 25.1) puts its control socket under $HOME/.gunicorn.
ENV HOME=/tmp
USER 10001:10001
EXPOSE 8080
CMD ["gunicorn", "-c", "/app/gunicorn.conf.py", "wsgi:app"]
