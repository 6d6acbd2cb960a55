# Targets CI and developers call. `make test` is the README's test command.
PYTHONS ?= 3.11 3.12 3.13

.PHONY: install test test-rust lint bench bench-subprocess bench-echo bench-http bench-memory bench-net tour clean

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
	$$(scripts/dev-env.sh 3.11) bench/cat_ceiling.py

# Network benchmarks (bench/README.md): 3.11, a release build of ferroloop,
# 2 CPUs (servers on CPU 0, the load generator on CPU 1). Raw data goes to
# bench/results/; docs/benchmarks.md holds the published runs.
BENCH_PIP = -m pip install -q --disable-pip-version-check

bench-echo:         ## echo servers vs uvloop and a raw Rust server (~4 min)
	py=$$(scripts/dev-env.sh 3.11) && $$py $(BENCH_PIP) uvloop matplotlib && \
	mkdir -p bench/results && \
	$$py bench/echo.py --json bench/results/echo-3.11.json && \
	$$py bench/plot.py bench/results/echo-3.11.json -o bench/results/echo-3.11.png

bench-http:         ## httptools server and uvicorn on each loop, under wrk (~1.5 min)
	py=$$(scripts/dev-env.sh 3.11) && $$py $(BENCH_PIP) uvloop uvicorn httptools && \
	mkdir -p bench/results && $$py bench/http.py --json bench/results/http-3.11.json

bench-memory:       ## bytes per idle connection, 10,000 connections (~1 min)
	py=$$(scripts/dev-env.sh 3.11) && $$py $(BENCH_PIP) uvloop && \
	mkdir -p bench/results && $$py bench/memory.py --json bench/results/memory-3.11.json

bench-net: bench-echo bench-http bench-memory

tour:
	python -m ferroloop examples/tour.py

clean:
	rm -rf target dist .venv
