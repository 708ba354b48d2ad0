# The two README commands: `make demo` and `make test`. `make bench` prints figures.
PY := .venv/bin/python
.PHONY: setup setup-full demo test bench lint

setup:
	deploy/setup.sh

setup-full:
	deploy/setup.sh --docker --browser

demo: setup-full
	$(PY) -m deploy.cli demo

test: setup-full
	$(PY) -m pytest tests -p no:cacheprovider

bench: setup-full
	$(PY) -m tests.bench.run_all

lint: setup
	.venv/bin/ruff check .
