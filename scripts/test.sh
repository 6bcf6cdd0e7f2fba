#!/usr/bin/env bash
# Sets up and runs every test: the real tools, through the real sandbox. The binaries the tests
# start (capsci, the capsci-jail sandbox helper, the HiGHS worker) are built first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --workspace --bins
cargo test --workspace "$@"
