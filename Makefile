# Every target works from a fresh clone: the virtualenv is made when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APP := service.app:create_app()
# The Node peer the benchmark compares against, when the shared folder is beside the checkout.
HASTE := $(wildcard $(abspath ../shared/peers/haste-server.sh))

.PHONY: install run web worker admin migrate test lint fmt bench clean container-smoke soak

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the service with its dev tools

run: $(STAMP) ## web + worker; embedded PostgreSQL under .data/ unless DATABASE_URL is set
	$(BIN)/python -m service.devrun

web: $(STAMP) ## the web server alone (needs DATABASE_URL)
	$(BIN)/gunicorn -c gunicorn.conf.py '$(APP)'

worker: $(STAMP) ## one expiry worker (needs DATABASE_URL); run several for replicas
	$(BIN)/python -m service.worker

admin: $(STAMP) ## operator actions (needs DATABASE_URL): make admin ARGS="reports"
	$(BIN)/python -m service.admin $(ARGS)

migrate: $(STAMP) ## apply pending migrations to DATABASE_URL
	$(BIN)/python -m service.migrate

test: $(STAMP) ## the whole suite (TEST_DATABASE_URL, else Docker, else embedded PostgreSQL)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## load benchmark; see bench/README.md
	$(BIN)/python bench/run.py --search-workers 2,3,4 \
		$(if $(HASTE),--peer 'haste=$(HASTE) {db_url} {port}') $(BENCH_ARGS)

SOAK_SECONDS ?= 300
soak: $(STAMP) ## 2 web instances + 3 workers through pgbouncer under load; SOAK_SECONDS=300
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

container-smoke: $(STAMP) ## build the image, run compose.yaml with podman, smoke-test it
	.ci/container-smoke

clean:
	rm -rf $(VENV) .data wheelhouse .pytest_cache .ruff_cache .mypy_cache .hypothesis *.egg-info
