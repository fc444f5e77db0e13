# Entry points; the scripts under scripts/ do the work (see docs/stack.md).
# Pass pytest arguments with ARGS, e.g.  make test ARGS="-m 'not kafka' -x"

.PHONY: bootstrap test demo stack-up stack-down stack-status lint bench

bootstrap:
	@scripts/bootstrap.sh

test:
	scripts/test.sh $(ARGS)

demo:
	scripts/demo.sh $(ARGS)

stack-up:
	@scripts/stack.sh up

stack-down:
	@scripts/stack.sh down

stack-status:
	@scripts/stack.sh status

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy detectors dataflows graphsentry schemas

# Every bench/bench_*.py runs against the local stack (started if needed, left running).
bench: bootstrap
	@set -e; stack_env="$$(scripts/stack.sh up)"; found=0; \
	for script in bench/bench_*.py; do \
		[ -e "$$script" ] || continue; found=1; \
		echo "== $$script"; env $$stack_env .venv/bin/python "$$script"; \
	done; \
	[ "$$found" = 1 ] || { echo "bench: no bench/bench_*.py found" >&2; exit 1; }
