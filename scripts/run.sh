#!/usr/bin/env bash
# Starts Civitas on its embedded defaults: builds the binary, fetches the
# default model on first run, creates the SQLite database, and prints the
# URL to open. Extra arguments go to `civitas serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh
bash scripts/web-assets.sh
cargo build --release --locked -p civitas
exec "${CARGO_TARGET_DIR:-target}/release/civitas" serve "$@"
