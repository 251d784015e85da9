# Interlock: `just --list` shows every recipe.

set positional-arguments

# uv compiles the packages it installs to bytecode: the proxy starts without compiling
# mitmproxy (and, with a judge, litellm) again on each start where Python may not write
# .pyc files (PYTHONDONTWRITEBYTECODE): litellm imports in about 8 s instead of 18 s on a loaded machine.
export UV_COMPILE_BYTECODE := "1"

db := env_var_or_default("INTERLOCK_DB", "interlock.db")

# Proxy and UI together: mitmdump on :8080 recording to the database, Datasette on 127.0.0.1:8001.
up *args:
    #!/usr/bin/env bash
    set -euo pipefail
    # The UI never creates a database: make it (the proxy's schema) before starting both.
    uv run sqlite-utils migrate "{{db}}" recorder/schema.py
    just ui "{{db}}" &
    ui=$!
    trap 'kill $ui 2>/dev/null || true' EXIT
    INTERLOCK_DB="{{db}}" uv run mitmdump --listen-host 127.0.0.1 -s addons/bundle.py "$@"

# Run the proxy (mitmdump) with the Interlock bundle; extra arguments go to mitmdump.
proxy *args:
    uv run mitmdump --listen-host 127.0.0.1 -s addons/bundle.py "$@"

# Run the proxy and also append every LLM call to a cassette: `just record FILE [mitmdump args]` (docs/replay.md).
record file *args:
    cassette="$1"; shift; exec uv run mitmdump --listen-host 127.0.0.1 -s addons/bundle.py --set "interlock_cassette=$cassette" "$@"

# Answer every LLM call from a cassette, never upstream: `just replay FILE [--fast] [--record-missing] [mitmdump args]` (docs/replay.md).
replay file *args:
    #!/usr/bin/env bash
    set -euo pipefail
    options=(--set "interlock_replay=$1")
    for arg in "${@:2}"; do
        case "$arg" in
            --fast) options+=(--set interlock_replay_fast=true) ;;
            --record-missing) options+=(--set interlock_replay_missing=record) ;;
            *) options+=("$arg") ;;
        esac
    done
    exec uv run mitmdump --listen-host 127.0.0.1 -s addons/bundle.py "${options[@]}"

# Run the proxy with mitmweb's UI, keeping streamed bodies so calls show whole; extra arguments go to mitmweb.
web *args:
    uv run mitmweb --listen-host 127.0.0.1 -s addons/bundle.py --set store_streamed_bodies=true "$@"

# Browse the recorded calls with Datasette on 127.0.0.1, read-only: `just ui [DB] [datasette options]` (DB: $INTERLOCK_DB, else interlock.db; it must exist: `just proxy` or `just up` creates it).
ui *args:
    INTERLOCK_DB="{{db}}" uv run python -m datasette_plugins.ui.serve "$@"

# Write recorded calls to a cassette for replay: `just cassette [DB] -o FILE [--call ID ...] [--session ID] [--where SQL]` (DB: $INTERLOCK_DB, else interlock.db; `--where` is SQL over `calls c`).
cassette *args:
    uv run python -m recorder.cassette_cli "$@"

# What a policy chain would have done to recorded calls, with no upstream call: `just backtest --config other.yaml [--db DB] [--since DATE | --session ID | --where SQL] [--max-judge-calls N] [--yes]` (DB: $INTERLOCK_DB, else interlock.db); the run goes into the database (docs/backtest.md).
backtest *args:
    INTERLOCK_DB="{{db}}" uv run python -m backtest "$@"

# Print the environment variables that make Python, Node and curl trust the mitmproxy CA.
trust *args:
    uv run python -m interlock.trust "$@"

# Run the whole test suite: two pytest-xdist workers, each test module on one (`-n 0` after it: one process).
test *args:
    [ -x /usr/bin/chromium ] && [ -x /usr/bin/valgrind ] || bash .ci/install-debian-packages.sh
    uv run pytest -n 2 --dist loadfile "$@"

# Lint and type-check.
lint:
    uv run ruff check .
    uv run ruff format --check .
    uv run mypy

# Benchmarks (not part of the test suite): the side-by-side run writing docs/BENCHMARKS.md; `just bench policies` (or judge, startup, ui, all) for the others.
bench *args:
    uv run python -m benchmarks "$@"

# List the available policies with their options and defaults.
policies:
    uv run python -m policies

# Delete recorded calls older than an age, with everything about them: `just prune --older-than 30d [DB] [--archive FILE]` (DB: $INTERLOCK_DB, else interlock.db; docs/team.md).
prune *args:
    uv run python -m recorder.prune_cli "$@"

# Merge several machines' recorder databases into one: `just merge A.db B.db ... -o team.db` (docs/team.md).
merge *args:
    uv run python -m recorder.merge "$@"
