.PHONY: demo test lint

# The main job: local stack + demo systems + full sync + live sync + dashboard. Options: make demo DEMO_ARGS="--load 50"
demo:
	bash scripts/demo.sh $(DEMO_ARGS)

# Everything the tests need, then unit, integration and acceptance tests against the real stack.
test:
	bash scripts/test.sh $(TEST_ARGS)

# Style, the layers' import contracts (docs/architecture.md) and dead code (pyproject.toml's [tool.vulture]).
lint:
	.venv/bin/ruff check cdc consumers schemas tests bench
	.venv/bin/lint-imports --no-cache --no-logo
	.venv/bin/vulture
