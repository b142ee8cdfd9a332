# Mon espace santé interoperability server — the two set-up commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
PYTEST_WORKERS ?= 2

.PHONY: run test test-sqlite test-postgres test-slow lint install bench bench-quick conformance clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make run: install, prepare the SQLite database with demo data, serve every face
run: $(STAMP)
	$(BIN)/mes init
	$(BIN)/mes db upgrade
	$(BIN)/mes demo load > /dev/null
	@echo "HTTP http://127.0.0.1:8080 (FHIR /fhir, XDS /xds/*, health /healthz) - HTTPS 8443 - SMTP 2525"
	$(BIN)/mes serve

## make test: install, run the suite on SQLite, again on PostgreSQL when it answers, then the slow tests
test: $(STAMP)
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory test-slow

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -p no:cacheprovider -m "not slow"

test-postgres: $(STAMP)
	@if $(BIN)/python -c "import psycopg,sys; psycopg.connect('$(PG_URL)', connect_timeout=3).close()" 2>/dev/null; then \
		echo "== PostgreSQL pass ($(PG_URL))"; \
		MES_TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -p no:cacheprovider -m "not slow"; \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL does not answer at $(PG_URL) on CI: failing"; exit 1; \
	else \
		echo "SKIPPED PostgreSQL pass: no server answers at $(PG_URL)"; \
	fi

## make test-slow: the long tests (crash, fuzz, races, bench smoke, conformance ratchet); CI runs them too
test-slow: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -p no:cacheprovider -m slow

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy habilitation espace

bench: $(STAMP)
	$(BIN)/python -m bench.run --full

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick

conformance: $(STAMP)
	$(BIN)/mes conformance run --suite all --report conformance-report

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
