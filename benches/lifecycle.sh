#!/usr/bin/env bash
# Lifecycle benchmark of husk against runc and crun, in one run (ratios are only comparable
# within a run). The measuring is done by the shared yardstick, which is the same for every
# runtime; this wrapper picks the binaries and keeps a dated copy of the table.
#
# usage: benches/lifecycle.sh [RUNTIME...]   (default: target/release/husk runc crun)
# env:   RUNS, SCALE_RUNS, RSS_RUNS, N as lifecycle-bench.sh takes them
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tool=../shared/tools/lifecycle-bench.sh
[ -x "$tool" ] || { echo "benches/lifecycle.sh: $tool not found (../shared must sit beside the repo)" >&2; exit 1; }
[ $# -gt 0 ] || set -- target/release/husk runc crun
mkdir -p benches/results
out=benches/results/lifecycle-$(date -u +%Y%m%dT%H%M%SZ).md
"$tool" "$@" | tee "$out"
echo "benches/lifecycle.sh: table saved in $out"
