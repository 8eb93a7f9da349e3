# FluxFill: the two commands a fresh machine needs.
#   make run    start ComfyUI (default host 0.30.0) with the pack on http://127.0.0.1:8188
#   make test   ruff (scripts/lint.sh), then every test, against every supported host (0.30.0 and v0.3.75)
# Both run `make setup` first (idempotent; the first time takes a few minutes).
HOST ?= comfyui-0.30.0
PORT ?= 8188
HOSTS ?= comfyui-0.30.0 comfyui-0.3.75
PYTEST_ARGS ?=

.PHONY: setup run test bench
setup:
	bash scripts/setup.sh $(HOSTS)

run:
	bash scripts/setup.sh $(HOST)
	bash scripts/run.sh $(HOST) $(PORT)

test: setup
	bash scripts/lint.sh
	bash scripts/browser_deps.sh
	bash scripts/test.sh $(HOSTS) -- $(PYTEST_ARGS)

bench: setup
	.hosts/$(HOST).venv/bin/python bench/bench_mask.py
	.hosts/$(HOST).venv/bin/python bench/bench_regions.py
	FLUXFILL_COMFYUI=$(CURDIR)/.hosts/$(HOST) .hosts/$(HOST).venv/bin/python bench/bench_local.py
	.hosts/$(HOST).venv/bin/python bench/bench_hosted.py
	.hosts/$(HOST).venv/bin/python bench/bench_journal.py
	FLUXFILL_COMFYUI=$(CURDIR)/.hosts/$(HOST) .hosts/$(HOST).venv/bin/python bench/bench_batch.py
