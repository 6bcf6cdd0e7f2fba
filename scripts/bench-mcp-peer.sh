#!/usr/bin/env bash
# Measures `capsci mcp` against an unsandboxed Python MCP server for Z3 from PyPI, in one run.
# The peer goes into a throwaway venv under /tmp; it is never a capsci dependency.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TMPDIR:-/tmp}/capsci-mcp-peer-venv"
if [ ! -x "$venv/bin/mcp-z3-prover" ]; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q mcp-z3-prover==0.1.0
fi
cargo build -q --workspace --bins
exec "$venv/bin/python" scripts/mcp_peer_bench.py "${CARGO_TARGET_DIR:-target}/debug/capsci" "$venv/bin/mcp-z3-prover"
