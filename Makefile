# chatmaid-connectors: every target sets up what it needs on a machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := dev,sandbox,kafka,airflow
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# The lowest supported Airflow beside the newest one of .venv: its own venv, pinned.
LOWEST := .venv-airflow-lowest
LOWEST_PINS := requirements/airflow-lowest.txt
LOWEST_STAMP := $(LOWEST)/.installed-$(shell cat pyproject.toml $(LOWEST_PINS) | sha1sum | cut -c1-12)
AIRFLOW_TESTS := tests/unit/test_airflow_hook.py tests/unit/test_airflow_tasks.py tests/integration/airflow

.PHONY: install airflow-lowest package test lint unit integration demo bench kafka-up kafka-down clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

$(LOWEST_STAMP): pyproject.toml $(LOWEST_PINS)
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip
	$(LOWEST)/bin/pip install --quiet -c $(LOWEST_PINS) -e ".[$(EXTRAS)]"
	rm -f $(LOWEST)/.installed-* && touch $@

# The Airflow tests again on the lowest supported Airflow (the rest of the suite is
# Airflow-independent and runs once, on the newest).
airflow-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/pytest -q $(AIRFLOW_TESTS)

# The sdist and the wheel as users get them: LICENSE, metadata, the wheel installed with
# only [airflow] in a fresh venv, its provider modules imported and listed by Airflow.
package: install
	$(BIN)/python scripts/check_package.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit -q

# Integration tests need the Kafka broker: started here (a no-op when already up).
integration: install kafka-up
	$(BIN)/pytest tests/integration -q

test: lint install kafka-up
	$(BIN)/pytest -q
	$(MAKE) airflow-lowest
	$(MAKE) package

kafka-up:
	KAFKA_PYTHON=$(BIN)/python bash scripts/kafka.sh up

kafka-down:
	bash scripts/kafka.sh down

# The demo starts the Kafka broker if none runs, and stops it afterwards only if it did.
demo: install
	@if bash scripts/kafka.sh status >/dev/null 2>&1; then started=; \
	else KAFKA_PYTHON=$(BIN)/python bash scripts/kafka.sh up && started=1; fi; \
	$(BIN)/python scripts/demo.py; status=$$?; \
	if [ -n "$$started" ]; then bash scripts/kafka.sh down; fi; exit $$status

bench: install kafka-up
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(LOWEST) .mypy_cache .ruff_cache .pytest_cache
