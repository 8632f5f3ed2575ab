# tenx-gateway: `make run` serves the API, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CLUSTER := deploy/local/cluster.sh
LOCAL_KUBECONFIG := $(CURDIR)/.local/kubeconfig
GATEWAY_BIND ?= 127.0.0.1:8080
export GATEWAY_BIND

.PHONY: help venv lock promtool promtool-path test-deps run test unit go-test integration cluster cluster-down \
	kueue opensearch bench soak clean image image-push deploy-local deploy-local-down screenshots

help:
	@echo "make run           serve the API on $(GATEWAY_BIND) (brings up the local cluster unless KUBECONFIG is set)"
	@echo "make test          unit and integration tests (brings up the local cluster)"
	@echo "make unit          unit tests only (no cluster)"
	@echo "make lock          refresh the pinned versions in requirements/ and cli/requirements.txt (UPGRADE=1: newest)"
	@echo "make cluster       build and start the local Kubernetes (deploy/local/)"
	@echo "make cluster-down  stop it"
	@echo "make image         the gateway's OCI image, without Docker (deploy/image/; build/image/oci)"
	@echo "make image-push    it, into the local cluster's registry as registry.local/tenx-gateway:<version>-<commit> and :dev"
	@echo "make deploy-local  the gateway deployed into the local cluster from deploy/ and the image; prints its URL last"
	@echo "make deploy-local-down  delete what make deploy-local runs"
	@echo "make screenshots   the console's jobs list and a log, as docs/console-jobs.png and docs/console-log.png"
	@echo "make soak          10 minutes of mixed load with apiserver faults (SOAK_SECONDS=180 for 3); not in make test"

# The dev venv: the server and tenx (cli/), both editable, with their test and bench extras, at the versions of the
# lock requirements/dev.txt (hash-checked); the two projects themselves come without dependencies of their own, and
# `pip check` proves the lock satisfies what they declare.
PIP_VERSION := 26.3
$(VENV)/.installed: setup.cfg pyproject.toml cli/pyproject.toml requirements/dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e . -e ./cli
	$(BIN)/pip check
	@touch $@

venv: $(VENV)/.installed

# The locks, resolved by pip-compile (pip-tools) with every file's hash, for CPython 3.11 on Linux (run it with that
# Python): requirements/gateway.txt, the server (constraints.txt, its pins for the image, is written from it);
# requirements/dev.txt, the server with its test and bench extras and the CLI (make venv); cli/requirements.txt, the
# CLI alone. Each is constrained by the one before, so a package has one version in all three. A run keeps every pin
# and only adds what setup.cfg or cli/pyproject.toml newly ask for; UPGRADE=1 moves every pin to the newest allowed.
PIP_TOOLS := pip-tools==7.7.0
LOCK_VENV := .venv-lock
COMPILE = $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
          --no-emit-find-links $(if $(UPGRADE),--upgrade)
lock:
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
	  $(LOCK_VENV)/bin/pip install --quiet pip==$(PIP_VERSION) $(PIP_TOOLS); }
	$(COMPILE) -o requirements/gateway.txt setup.cfg
	$(COMPILE) --extra test --extra bench -c requirements/gateway.txt -o requirements/dev.txt setup.cfg cli/pyproject.toml
	$(COMPILE) -c requirements/dev.txt -o cli/requirements.txt cli/pyproject.toml
	@{ echo "# The server's exact versions (requirements/gateway.txt without its hashes, and the pip that installs them),"; \
	   echo "# written by make lock: the image's recipes (Dockerfile, deploy/image/build.sh) build the package's wheel"; \
	   echo "# with these as constraints, which a hash-checked install of a source directory cannot take."; \
	   echo "pip==$(PIP_VERSION)"; \
	   sed -n 's/^\([A-Za-z0-9._-]*==[^ ]*\).*/\1/p' requirements/gateway.txt; } > constraints.txt

cluster:
	$(CLUSTER) up

cluster-down:
	deploy/local/kueue/kueue.sh down
	$(CLUSTER) down
	deploy/local/opensearch/opensearch.sh down

# Kueue (job queueing; GATEWAY_QUEUE=kueue): its manager as a host process beside the local control plane, built
# from its Go module at the pinned version (deploy/local/kueue/kueue.sh; deploy/local/README.md).
kueue: venv cluster
	deploy/local/kueue/kueue.sh up

# The local single-node OpenSearch of the log archive's OpenSearch lane (assembled from Maven Central on first use).
opensearch:
	deploy/local/opensearch/opensearch.sh up

# Without KUBECONFIG the gateway serves the local cluster, with host volumes and the log archive under .local/, and
# its pods run on the real node tenx-real (containers, images from the local registry); set
# GATEWAY_POD_NODE_SELECTOR= and GATEWAY_POD_TOLERATIONS= (empty) for the process-agent node tenx-local instead.
# The log collectors run beside the API and stop with it: on the local cluster a node collector per node, reading the
# nodes' log files (deploy/local/collectors.sh; health and metrics on ports 8081, 8082); with KUBECONFIG, the
# collector that follows logs through the apiserver (port 8081). One that exits is restarted, with a loud line.
# Their listeners are on loopback (GATEWAY_COLLECTOR_HOST's default), as the API and its metrics are.
run: venv
	@if [ -z "$$KUBECONFIG" ]; then \
	  $(CLUSTER) up && deploy/local/kueue/kueue.sh up && \
	  export KUBECONFIG=$(LOCAL_KUBECONFIG) GATEWAY_QUEUE=$${GATEWAY_QUEUE-kueue} && \
	  export GATEWAY_HOST_VOLUME_ROOT=$${GATEWAY_HOST_VOLUME_ROOT:-$(CURDIR)/.local/app_data} && \
	  export GATEWAY_DATA_DIR=$${GATEWAY_DATA_DIR:-$(CURDIR)/.local/data} && \
	  export GATEWAY_POD_NODE_SELECTOR=$${GATEWAY_POD_NODE_SELECTOR-tenx.io/runtime=containerd} && \
	  export GATEWAY_POD_TOLERATIONS=$${GATEWAY_POD_TOLERATIONS-tenx.io/runtime=containerd:NoSchedule}; \
	  collectors="deploy/local/collectors.sh $(BIN)/tenx-gateway $${GATEWAY_COLLECTOR_PORT:-8081}"; \
	else \
	  collectors="scripts/supervise.sh $(BIN)/tenx-gateway collect"; \
	  export GATEWAY_COLLECTOR_PORT=$${GATEWAY_COLLECTOR_PORT:-8081}; \
	fi; \
	echo "tenx-gateway on http://$(GATEWAY_BIND) (KUBECONFIG=$$KUBECONFIG)"; \
	echo "add a user:  TOKEN=\$$(KUBECONFIG=$$KUBECONFIG $(BIN)/tenx-gateway users add alice)"; \
	echo "then:        curl http://$(GATEWAY_BIND)/v1/regions/us/jobs -H 'username: alice' -H \"Authorization: token \$$TOKEN\""; \
	$$collectors & collector=$$!; \
	trap 'kill $$collector 2>/dev/null; wait $$collector' EXIT INT TERM; \
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# promtool, Prometheus' rule checker, from Debian's prometheus package (unpacked, not installed) into .local/tools/
# once: the tests load the alert rules of deploy/components/monitoring in it.
PROMTOOL := $(CURDIR)/.local/tools/promtool-debian
promtool: $(PROMTOOL)
$(PROMTOOL):
	scripts/install-promtool.sh $@
promtool-path:
	@echo $(PROMTOOL)

# The gateway's OCI image, built from Debian's packages (mmdebstrap) and the project's wheels with umoci, without a
# Docker engine or Docker Hub; each step is cached in build/image/ and done again only when its inputs change
# (deploy/image/README.md). The Dockerfile builds the same image where Docker is.
image:
	deploy/image/build.sh

# ...pushed to the local cluster's registry, where the real node tenx-real pulls registry.local/tenx-gateway from
image-push: image cluster
	@. build/image/image.env && \
	  $(CLUSTER) real-push "oci:$$IMAGE_LAYOUT:$$IMAGE_TAG" "$$IMAGE_NAME:$$IMAGE_TAG" && \
	  $(CLUSTER) real-push "oci:$$IMAGE_LAYOUT:dev" "$$IMAGE_NAME:dev" && \
	  echo "$$IMAGE_NAME:$$IMAGE_TAG ($$IMAGE_DIGEST) and $$IMAGE_NAME:dev in the local registry"

# deploy/ applied to the local cluster as an operator applies it, through deploy/local/overlay (deploy/local/deploy.sh):
# the image above, two API replicas and a node collector as pods on the real node, the archive in the local
# OpenSearch, the API on http://127.0.0.1:30080 (a NodePort the local cluster publishes on the host). Each step's time
# is printed, and the API's URL last. deploy-local-down deletes what runs (namespaces, RBAC, policies and users stay).
deploy-local:
	deploy/local/deploy.sh up

deploy-local-down:
	deploy/local/deploy.sh down

# Debian packages the tests use: PostgreSQL (archive store tests) and Chromium (renders /docs).
test-deps:
	scripts/install-postgres.sh
	scripts/install-test-deps.sh

# The console's pictures in docs/ (scripts/screenshots.py): a gateway of its own on the local cluster, which must be
# up (make cluster; the script never starts or restarts it), a fresh user's jobs, headless Chromium.
screenshots: venv
	scripts/install-test-deps.sh >/dev/null
	$(BIN)/python scripts/screenshots.py

unit: venv
	$(BIN)/pytest -q -m "not integration" tests

go-test:
	cd deploy/local/node-agent && go test ./...

# Test files run in TEST_WORKERS pytest-xdist processes, a file's tests together in one (each process has its own
# session gateway, under names of its own): the integration tests mostly wait on the cluster. TEST_WORKERS=0: one.
TEST_WORKERS ?= 3
PYTEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

integration: venv test-deps promtool cluster kueue opensearch image
	$(BIN)/pytest -q $(PYTEST_PARALLEL) -m integration tests

# The cluster comes up and the image is built before pytest so their progress shows; the fixtures then reuse them.
test: venv test-deps go-test promtool cluster kueue opensearch image
	$(BIN)/pytest -q $(PYTEST_PARALLEL) tests

# The gateway (gunicorn, shipped gunicorn.conf.py) against direct apiserver calls on the local cluster; writes
# bench/results/latest.json. QUICK=1: a reduced set (under five minutes). PROFILE=1: py-spy the gateway per case.
# Then the archive store, the collector at scale, the streams, a log flood on the real node with each kind of
# collector (bench/flood.py: bench/results/flood.json), and queued jobs' admission (bench/queue.py).
bench: venv cluster kueue opensearch
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/python -m bench.run $(if $(QUICK),--quick) $(if $(PROFILE),--profile)
	$(BIN)/python -m bench.archive $(if $(QUICK),--lines 10000 --repeat 50 --node-lines 100000)
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/python -m bench.collector $(if $(QUICK),--containers 100 --seconds 90 --ha 0)
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/python -m bench.streams $(if $(QUICK),--quick)
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/python -m bench.flood $(if $(QUICK),--quick)
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/python -m bench.queue $(if $(QUICK),--quick)

# Mixed load from several users while the gateway's own second apiserver is hung and killed in turn; writes
# .local/reliability/soak.json. SOAK_SECONDS (600) shortens it. See RELIABILITY.md.
soak: venv cluster
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(BIN)/python -m tests.support.soak

clean:
	rm -rf $(VENV) $(LOCK_VENV) build *.egg-info cli/*.egg-info cli/build .pytest_cache
