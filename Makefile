# The two commands of the README's Quick start: `make run` and `make test`.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Refuse frames over 64 KiB at the server, before the application sees them;
# ping sockets idle for 20 s and drop them after 30 s without a pong.
DAPHNE_LIMITS := --websocket-max-message-size 65536 --websocket-max-frame-size 65536 \
	--ping-interval 20 --ping-timeout 30

.PHONY: run test lint spec bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The server starts in the background; "running" is printed once it answers.
run: $(STAMP)
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput
	@DEBUG=$${DEBUG:-1} CHAT_ALLOW_GUESTS=$${CHAT_ALLOW_GUESTS:-1} \
		CHAT_SITE_URL=$${CHAT_SITE_URL:-http://127.0.0.1:$(PORT)} \
		$(BIN)/daphne -b 127.0.0.1 -p $(PORT) $(DAPHNE_LIMITS) chatsite.asgi:application & \
	server=$$!; trap 'kill $$server 2>/dev/null' INT TERM; \
	if $(BIN)/python -m chat.ready http://127.0.0.1:$(PORT)/healthz $$server; then \
		printf '\n  Chat is running: open http://127.0.0.1:$(PORT)/\n\n'; fi; \
	wait $$server

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Rewrite docs/asyncapi.yaml from chat/protocol/ and docs/schema.graphql from
# chat/graphql/ (a test fails when either is stale).
spec: $(STAMP)
	$(BIN)/python -m chat.spec > docs/asyncapi.yaml
	$(BIN)/python -m chat.graphql > docs/schema.graphql

# The benchmark of docs/performance.md; BENCH_ARGS adds options (see --help).
bench: $(STAMP)
	$(BIN)/python manage.py chatbench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
