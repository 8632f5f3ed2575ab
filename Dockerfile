# syntax=docker/dockerfile:1
# tenx-gateway image, for operators with Docker:
#   docker build --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     --build-arg VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' gateway/version.py) \
#     --build-arg REVISION=$(git rev-parse HEAD) -t tenx-gateway:latest .
# Without Docker, `make image` (deploy/image/build.sh) builds the same image from Debian's packages with mmdebstrap
# and umoci. Both run deploy/image/install.sh with deploy/image/packages, and build.sh takes the final stage's
# ENV, USER, WORKDIR, EXPOSE and CMD from this file; tests/deploy/test_image_recipe.py checks that the two stay in step.
# Runs gunicorn with the shipped gunicorn.conf.py as UID 10001 (`tenx-gateway collect` for the log collector);
# see deploy/README.md.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- builder: wheels of the package, every dependency and pip ---------------------------------------------
FROM ${DEBIAN_IMAGE} AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the package build reads (README.md is setup.cfg's long_description, LICENSE goes into the wheel), and
# the lock: constraints.txt, the exact versions of requirements/gateway.txt (make lock writes both); a glob that
# matches nothing copies nothing.
COPY pyproject.toml setup.cfg LICENSE README.md* constraints.tx[t] ./
COPY gateway ./gateway
ARG SOURCE_DATE_EPOCH
# All dependencies publish wheels for CPython 3.11 on linux amd64 and arm64, so no compiler is needed even here.
RUN pip wheel --wheel-dir /wheels $(test -f constraints.txt && echo --constraint constraints.txt) . pip

# ---- runtime ----------------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE}
COPY deploy/image/dpkg-excludes /etc/dpkg/dpkg.cfg.d/tenx-gateway-excludes
# Debian's python3.11 and the rest of deploy/image/packages; the user gateway (10001) and the log archive's
# directory (GATEWAY_DATA_DIR), where Kubernetes mounts a volume.
RUN --mount=type=bind,source=deploy/image,target=/tmp/image \
    sh /tmp/image/install.sh system /tmp/image/packages
ARG SOURCE_DATE_EPOCH
# From the builder's wheels only (never the network); pip runs from its wheel and is not installed.
RUN --mount=type=bind,from=builder,source=/wheels,target=/tmp/wheels \
    --mount=type=bind,source=deploy/image,target=/tmp/image \
    sh /tmp/image/install.sh python /tmp/wheels all
WORKDIR /app
COPY gunicorn.conf.py wsgi.py ./
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title=tenx-gateway \
      org.opencontainers.image.description="A self-hosted TenxCloud Jobs API that runs jobs as Kubernetes Jobs" \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.revision=$REVISION \
      org.opencontainers.image.created=$CREATED \
      org.opencontainers.image.source=$SOURCE \
      org.opencontainers.image.licenses=Apache-2.0
# The root filesystem is read-only in the pod (deploy/deployment.yaml) with an emptyDir at /tmp, hence HOME=/tmp:
# gunicorn (>= 25.1) puts its control socket under $HOME/.gunicorn.
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_BIND=0.0.0.0:8080 \
    HOME=/tmp
USER 10001:10001
EXPOSE 8080
CMD ["gunicorn", "-c", "/app/gunicorn.conf.py", "wsgi:app"]
