#!/usr/bin/env bash
# `just bench`: every scripts/bench-*.sh (image builds, install throughput against
# bmaptool), then the simulated first boot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for b in "$here"/bench-*.sh; do
  echo "== $(basename "$b")"
  bash "$b"
done
if [[ -f $here/../sim/benches/sim.rs ]]; then
  echo "== simulated first boot"
  cargo bench --manifest-path "$here/../Cargo.toml" -p hcikit-sim --bench sim
fi
