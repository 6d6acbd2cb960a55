# Targets CI and developers call. `make test` is the README's test command.
PYTHONS ?= 3.11 3.12 3.13

.PHONY: install test test-rust lint bench bench-subprocess tour clean

install:            ## build and install into the current python
	python -m pip install .

test:               ## everything CI runs
	scripts/test.sh $(PYTHONS)

test-rust:
	cargo test --lib

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

bench:              ## micro-benchmarks vs asyncio and uvloop (3.11)
	$$(scripts/dev-env.sh 3.11) -m pip install -q uvloop
	$$(scripts/dev-env.sh 3.11) bench/micro.py

bench-subprocess:   ## pipe throughput and spawn/reap vs asyncio and uvloop (3.11)
	$$(scripts/dev-env.sh 3.11) -m pip install -q uvloop
	$$(scripts/dev-env.sh 3.11) bench/subprocess_bench.py

tour:
	python -m ferroloop examples/tour.py

clean:
	rm -rf target dist .venv
