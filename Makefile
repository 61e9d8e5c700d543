# torghut — two commands on a fresh machine:
#   make run    set everything up and run the bot on embedded defaults (SQLite, embedded Celery
#               broker, simulated broker, bundled sample market data)
#   make test   install test tools, start the real services, lint, type-check, run the suite
# and the production topology on those services: `make run-services` (scripts/run_services.sh).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
PYTEST_ARGS ?=
# the suite in two worker processes, each test file on one worker (PYTEST_WORKERS=0: in-process)
PYTEST_WORKERS ?= 2
PYTEST_XDIST = $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile)

.PHONY: run run-services test venv deps deps-dev lint typecheck migrations-check pytest services-up services-down bench clean release-check image release

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): $(BIN)/python
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip >/dev/null
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8

venv: $(UV)

$(VENV)/.deps-base: requirements/base.txt | $(UV)
	$(UV) pip install -q --python $(BIN)/python -r requirements/base.txt
	touch $@

$(VENV)/.deps-dev: requirements/base.txt requirements/dev.txt | $(UV)
	$(UV) pip install -q --python $(BIN)/python -r requirements/base.txt -r requirements/dev.txt
	touch $@ $(VENV)/.deps-base

deps: $(VENV)/.deps-base
deps-dev: $(VENV)/.deps-dev

run: deps
	@scripts/run_local.sh

# web, trading and research workers, beat and the order-feed consumer on Postgres, Redis, Kafka
# and Ceph RGW (started as for `make test` and left running: `make services-down`)
run-services: deps-dev
	@scripts/run_services.sh

lint: deps-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps-dev
	$(BIN)/mypy .

migrations-check: deps-dev
	TORGHUT_VAR_DIR=$$(mktemp -d) $(BIN)/python manage.py makemigrations --check --dry-run

# pytest exits 5 when it collects nothing: reported, not treated as a crash of the build
pytest: deps-dev
	set -a; source .services/env; set +a; rc=0; \
	$(BIN)/pytest $(PYTEST_XDIST) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

services-up: deps-dev
	scripts/services.sh up

services-down:
	scripts/services.sh down

# The whole suite against real services; stops what it started, keeps pytest's exit code.
# The services start (apt installs, broker, RGW) while lint, type-check and the migrations check
# run: neither needs the other, and together they take about as long as the slower one.
test: deps-dev
	@mkdir -p var; scripts/services.sh up >var/services-up.log 2>&1 & up=$$!; \
	rc=0; $(MAKE) --no-print-directory lint typecheck migrations-check || rc=$$?; \
	wait $$up; up_rc=$$?; cat var/services-up.log; \
	if [ $$rc -eq 0 ] && [ $$up_rc -ne 0 ]; then echo "services did not start"; rc=$$up_rc; fi; \
	if [ $$rc -eq 0 ]; then $(MAKE) --no-print-directory pytest || rc=$$?; fi; \
	scripts/services.sh down; exit $$rc

# Every benchmark, one table (bench/run_all.py; BENCH_ARGS="--only api_latency celery_roundtrip"
# for some). Starts the services `make test` uses when they are down and leaves them running
# (`make services-down`); the benchmarks make their own databases (torghut_bench*) and Redis.
BENCH_ARGS ?=
bench: deps-dev
	scripts/services.sh up
	command -v wrk >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
	set -a; source .services/env; set +a; $(BIN)/python bench/run_all.py $(BENCH_ARGS)

# Release gate (scripts/release_check.py, standard library only): compares the revision running
# in production with the candidate. Exit 0 = deploy automatically, 3 = migrations changed: a
# person approves (the output says whether they are backwards compatible), 1 = error.
# RELEASE_CHECK_ARGS="--json --fail-on-incompatible" for machine output and exit 2 on a breaking
# migration.
BASE ?=
HEAD ?= HEAD
RELEASE_CHECK_ARGS ?=
release-check:
	@test -n "$(BASE)" || { echo "usage: make release-check BASE=<running rev> [HEAD=<candidate rev>]" >&2; exit 1; }
	$(PYTHON) scripts/release_check.py --base "$(BASE)" --head "$(HEAD)" $(RELEASE_CHECK_ARGS)

# The container image (needs a Docker daemon; deploy/entrypoint.sh picks the process role).
IMAGE ?= torghut
image:
	docker build -t $(IMAGE):$$(git rev-parse --short HEAD) \
	  --build-arg TORGHUT_COMMIT=$$(git rev-parse HEAD) \
	  --build-arg TORGHUT_VERSION=$$(git describe --tags --always) .

# The release pull request (scripts/release.py, standard library only), after `make image` and
# the push: writes release-contract.json (image, digest, commit, version, migrations changed since
# PREVIOUS, default the newest tag), then pins IMAGE:VERSION@DIGEST in every workload of deploy/k8s
# on the branch release/VERSION, pushes it to REMOTE and opens the PR on GITHUB_REPO (owner/name)
# with the token in GITHUB_TOKEN: a draft labelled do-not-automerge when migrations changed,
# otherwise auto-merge (squash) requested. The values reach the script through the environment,
# never through the recipe's shell text.
release: export RELEASE_IMAGE = $(IMAGE)
release: export RELEASE_DIGEST = $(DIGEST)
release: export RELEASE_VERSION = $(VERSION)
release: export RELEASE_PREVIOUS = $(PREVIOUS)
release: export RELEASE_GITHUB_REPO = $(GITHUB_REPO)
release: export RELEASE_REMOTE = $(or $(REMOTE),origin)
release: export RELEASE_BRANCH = $(or $(RELEASE_BASE),main)
release: export RELEASE_API_URL = $(or $(GITHUB_API_URL),https://api.github.com)
release:
	@test -n "$$RELEASE_DIGEST" && test -n "$$RELEASE_VERSION" && test -n "$$RELEASE_GITHUB_REPO" || \
	  { echo "usage: make release IMAGE=<registry/name> DIGEST=sha256:<hex> VERSION=<tag> GITHUB_REPO=<owner/name> [PREVIOUS=<rev>] (GITHUB_TOKEN in the environment)" >&2; exit 1; }
	$(PYTHON) scripts/release.py contract --image "$$RELEASE_IMAGE" --digest "$$RELEASE_DIGEST" \
	  --version "$$RELEASE_VERSION" $${RELEASE_PREVIOUS:+--previous "$$RELEASE_PREVIOUS"}
	$(PYTHON) scripts/release.py promote --github-repo "$$RELEASE_GITHUB_REPO" \
	  --remote "$$RELEASE_REMOTE" --base "$$RELEASE_BRANCH" --api-url "$$RELEASE_API_URL"

clean:
	rm -rf var .services .pytest_cache .mypy_cache .ruff_cache
