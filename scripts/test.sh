#!/usr/bin/env bash
# Runs the whole test suite: lints, Rust unit and integration tests on
# SQLite and PostgreSQL (single sign-on against a real OpenID provider on
# Node), then the OpenAI compatibility suite (official `openai` Python
# package) against the real binary and real models, and the workspace in
# real headless Chromium with axe-core accessibility scans.
#
# Needs a PostgreSQL server where the user may create databases:
# CIVITAS_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/prerequisites.sh
python3 -m pip install --quiet --disable-pip-version-check 'openai>=1.40' pytest jsonschema httpx openapi-spec-validator pyyaml 'opentelemetry-proto>=1.30'

# A real OpenID provider (the `oidc-provider` package) for the single
# sign-on tests, from the lock file.
(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
# The workspace's assets (embedded in the binary) from npm.
bash scripts/web-assets.sh
# Real headless Chromium (Debian's) and playwright-core for the workspace.
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (workspace tests in a real browser)"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=""; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/civitas/target}"
export CIVITAS_TEST_MODELS_DIR="${CIVITAS_TEST_MODELS_DIR:-$HOME/.cache/civitas/models}"
export CIVITAS_TEST_DATABASE_URL="${CIVITAS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CIVITAS_TEST_DEFAULT_MODEL="${CIVITAS_TEST_DEFAULT_MODEL:-1}"

echo "== format and lints"
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== build"
cargo build --locked --workspace
export CIVITAS_BIN="$CARGO_TARGET_DIR/debug/civitas"

echo "== models for the tests"
CIVITAS__MODELS__DIR="$CIVITAS_TEST_MODELS_DIR" "$CIVITAS_BIN" models pull smollm2-135m-instruct
CIVITAS__MODELS__DIR="$CIVITAS_TEST_MODELS_DIR" "$CIVITAS_BIN" models pull all-minilm-l6-v2
if [ "$CIVITAS_TEST_DEFAULT_MODEL" = "1" ]; then
    CIVITAS__MODELS__DIR="$CIVITAS_TEST_MODELS_DIR" "$CIVITAS_BIN" models pull qwen2.5-1.5b-instruct
fi

echo "== Rust tests"
if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --locked --workspace --no-fail-fast --test-threads 2
else
    cargo test --locked --workspace --no-fail-fast -- --test-threads 2
fi

echo "== OpenAI compatibility suite"
python3 -m pytest -q tests/compat

echo "== the workspace in headless Chromium, with axe-core scans"
export CIVITAS_SCREENSHOTS="${CIVITAS_SCREENSHOTS:-$CARGO_TARGET_DIR/screenshots}"
node --test tests/browser/
echo "screenshots of the pages: $CIVITAS_SCREENSHOTS"
