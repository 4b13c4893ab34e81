#!/usr/bin/env bash
# Embedded-engine benchmark (issue 12), on one busybox image in one run:
#   - Runtime::execute of /bin/true from an installed image: p50 and p99 (examples/bench_execute.rs);
#   - 20 concurrent executes (wall time);
#   - `husk run --image` against husk's bundle `run` of the same rootfs (hyperfine; target: within 1.3x).
# The comparison with podman/ctr/docker `run --rm` is not here (see the README's benchmark section).
#
# usage: benches/execute.sh          env: N=200 (sequential executes), RUNS=30 (hyperfine runs),
#        HUSK=target/release/husk, EXAMPLE=target/release/examples/bench_execute (built if missing),
#        ROOTFS_TAR=rootfs/out/busybox.tar.gz
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $(id -u) == 0 ]] || { echo "benches/execute.sh: must run as root" >&2; exit 1; }
N=${N:-200} RUNS=${RUNS:-30}
HUSK=${HUSK:-target/release/husk}
EXAMPLE=${EXAMPLE:-target/release/examples/bench_execute}
ROOTFS_TAR=${ROOTFS_TAR:-rootfs/out/busybox.tar.gz}
ROOTFS_DIR=${ROOTFS_TAR%.tar.gz}
[[ -x $HUSK ]] || { echo "benches/execute.sh: $HUSK missing (make build)" >&2; exit 1; }
HUSK=$(realpath "$HUSK")
[[ -f $ROOTFS_TAR && -d $ROOTFS_DIR ]] || { echo "benches/execute.sh: $ROOTFS_TAR missing (make rootfs)" >&2; exit 1; }
if [[ ! -x $EXAMPLE ]]; then
  cargo build --release --example bench_execute
fi
work=$(mktemp -d /var/tmp/husk-bench-execute.XXXXXX)
cleanup() {
  for id in $("$HUSK" --root "$work/state" list -q 2>/dev/null); do
    "$HUSK" --root "$work/state" delete -f "$id" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

out=$("$EXAMPLE" "$ROOTFS_TAR" "$work/store" "$work/state" "$N")
p50=$(sed -n 's/^execute p50 \([0-9.]*\) p99.*/\1/p' <<<"$out")
p99=$(sed -n 's/^execute p50 [0-9.]* p99 \([0-9.]*\).*/\1/p' <<<"$out")
conc=$(sed -n 's/^execute 20 concurrent \([0-9.]*\)$/\1/p' <<<"$out")

# The same image for the CLI (installed by the example as "bench"), and a bundle of the same
# rootfs for the plain `run`.
mkdir -p "$work/bundle"
(cd "$work/bundle" && "$HUSK" spec)
sed -i "s|\"terminal\": true|\"terminal\": false|; s|\"sh\"|\"/bin/true\"|; s|\"path\": \"rootfs\"|\"path\": \"$(realpath "$ROOTFS_DIR")\"|" "$work/bundle/config.json"
image_run="$HUSK --root $work/state --store $work/store run --image bench bench-img -- /bin/true"
bundle_run="$HUSK --root $work/state run -b $work/bundle bench-bundle"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/run.json" \
    -n "run --image" "$image_run" -n "run (bundle)" "$bundle_run" >&2
  read -r img bun < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print(r[0]["median"]*1000, r[1]["median"]*1000)' "$work/run.json")
else
  time_ms() { local s e; s=$(date +%s%N); for _ in $(seq "$RUNS"); do $1 >/dev/null; done; e=$(date +%s%N); echo $(( (e - s) / RUNS / 1000000 )); }
  img=$(time_ms "$image_run"); bun=$(time_ms "$bundle_run")
fi
ratio=$(python3 -c "print(f'{$img / $bun:.2f}')")

mkdir -p benches/results
table=benches/results/execute-$(date -u +%Y%m%dT%H%M%SZ).md
{
  echo "| scenario | time (ms) |"
  echo "|---|---|"
  echo "| execute /bin/true, p50 (n=$N) | $p50 |"
  echo "| execute /bin/true, p99 (n=$N) | $p99 |"
  echo "| 20 concurrent executes, wall | $conc |"
  printf '| husk run --image, median | %.2f |\n' "$img"
  printf '| husk run (bundle), median | %.2f |\n' "$bun"
  echo "| run --image / run (bundle) | ${ratio}x |"
} | tee "$table"
echo "benches/execute.sh: table saved in $table" >&2
