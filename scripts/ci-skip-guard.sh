#!/usr/bin/env bash
# Proves that a test cannot pass by skipping under CI: the ceph-conf test, run with a PATH
# that lacks ceph-conf, must FAIL with CI=true and skip (pass) without it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cargo test -p hcikit-tests --test render_tools --locked --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "render_tools":
        print(m["executable"])')
[[ -x $bin ]] || { echo "skip-guard: render_tools test binary not found" >&2; exit 1; }
test=ceph_conf_reads_back_through_ceph_conf
if env PATH=/nonexistent CI=true "$bin" --exact "$test" >/tmp/skip-guard.log 2>&1; then
  cat /tmp/skip-guard.log >&2
  echo "skip-guard: $test passed under CI=true without ceph-conf on PATH" >&2
  exit 1
fi
grep -q 'required under CI' /tmp/skip-guard.log || { cat /tmp/skip-guard.log >&2; exit 1; }
env -u CI PATH=/nonexistent "$bin" --exact "$test" --nocapture >/tmp/skip-guard.log 2>&1 ||
  { cat /tmp/skip-guard.log >&2; echo "skip-guard: without CI the test failed" >&2; exit 1; }
grep -q 'SKIPPED: `ceph-conf`' /tmp/skip-guard.log ||
  { echo "skip-guard: without CI the missing tool was not reported as SKIPPED" >&2; exit 1; }
echo "skip-guard: a missing tool fails the test under CI=true and skips it otherwise"
