# The two commands of the README. Each does its own idempotent set-up first (infra/bootstrap.sh).
VENV ?= .venv
PYTEST_ARGS ?=

.PHONY: setup demo test bench

setup:
	./infra/bootstrap.sh

demo: setup
	$(VENV)/bin/centralita demo

test:
	./infra/bootstrap.sh --for-tests
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/centralita bench --list
