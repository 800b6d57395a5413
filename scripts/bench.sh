#!/usr/bin/env bash
# `just bench`: runs every scripts/bench-*.sh (image builds, simulated first boot, …).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for b in "$here"/bench-*.sh; do
  echo "== $(basename "$b")"
  bash "$b"
done
