#!/usr/bin/env bash
# Installs everything capsci needs on a Debian machine, idempotently: the tools it runs
# (PARI/GP, Z3, cvc5, Rocq, bubblewrap), the build dependencies (Cap'n Proto, cmake and libclang
# for the vendored HiGHS), and the hash-locked Python environment for SymPy.
# Safe to run again: each step checks first and does nothing when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pari-gp z3 cvc5 coq bubblewrap capnproto libcapnp-dev cmake libclang-dev python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The SymPy environment: Debian's python3 (readable by the sandbox's unprivileged uid, unlike a
# per-user interpreter), a venv outside any home directory, packages from the hash-locked file.
venv="${CAPSCI_PYTHON_ENV:-/opt/capsci/venv}"
lock_hash=$(sha256sum python/requirements.lock | cut -d' ' -f1)
if [ "$(cat "$venv/.capsci-lock" 2>/dev/null)" != "$lock_hash" ]; then
  echo "setup: building the SymPy environment in $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps \
    -r python/requirements.lock
  cp python/requirements.lock "$venv/requirements.lock"
  echo "$lock_hash" > "$venv/.capsci-lock"
  chmod -R a+rX "$venv"
fi
