# The two commands of the README: `make run` and `make test`. Both set up what is missing first
# (`make run` the runtime packages; `make test`, `test-unit` and `bench` also the dev extras).
VENV ?= .venv
ARGS ?=

.PHONY: setup run test test-unit compose-test bench clean

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/ticklake up $(ARGS)

test:
	@WITH_TEST_TOOLS=1 bash scripts/setup.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest $(ARGS)
	@if docker info >/dev/null 2>&1; then $(MAKE) compose-test; \
	else echo "make test: no Docker daemon answers, compose-test skipped (make compose-test sets one up)"; fi

# docker-compose.yml end to end (docs/docker.md): image, cluster, two tickers, checks, down -v
compose-test: setup
	bash scripts/compose-test.sh

test-unit:
	@WITH_TEST_TOOLS=1 bash scripts/setup.sh
	$(VENV)/bin/pytest -m "not integration and not spark" $(ARGS)

# about an hour: each benchmark prints its figures (README, Benchmarks)
bench:
	@WITH_TEST_TOOLS=1 bash scripts/setup.sh
	$(VENV)/bin/python bench/validation.py
	$(VENV)/bin/python bench/backlog.py --ticks 5000000
	$(VENV)/bin/python bench/live.py --lake-ticks 20000 5000000 --rate 1000 --minutes 2
	$(VENV)/bin/python bench/live.py --lake-ticks 20000 --rate 5000 --minutes 10
	$(VENV)/bin/python bench/live.py --lake-ticks 20000 --rate 5000 --minutes 10 --mode live
	$(VENV)/bin/python bench/kafka_source.py
	$(VENV)/bin/python bench/dashboard.py
	$(VENV)/bin/python bench/api_load.py
	$(VENV)/bin/python bench/driver_jit.py
	$(VENV)/bin/python bench/lstm_input.py
	$(VENV)/bin/python bench/commit_cost.py
	$(VENV)/bin/python bench/merge_cost.py
	$(VENV)/bin/python bench/live_writer.py

clean:
	rm -rf lake .ticklake
