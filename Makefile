.PHONY: demo test lint

# The main job: local stack + demo systems + full sync + live sync + dashboard.
demo:
	bash scripts/demo.sh

# Everything the tests need, then unit, integration and acceptance tests against the real stack.
test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check cdc consumers schemas tests bench
