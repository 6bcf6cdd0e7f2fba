#!/usr/bin/env bash
# The main job on a fresh machine: set up, build capsci and its sandbox helpers, run the demo
# (every backend through the service, then `log verify`) on the embedded default store.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build -q --workspace --bins
exec "${CARGO_TARGET_DIR:-target}/debug/capsci" demo "$@"
