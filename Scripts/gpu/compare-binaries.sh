#!/usr/bin/env bash
# On the GPU machine: two builds of mlp timed against each other on the CUDA steps, alternating,
# so that a change's cost is measured in the same minutes on the same card (ratios, not absolute
# times, are what hold between calls). Build the older one on a development machine from a
# worktree, as ../shared/GPU.md says, into .device/mlp-old:
#     git worktree add /tmp/old REV && (cd /tmp/old && swift build -c release --static-swift-stdlib \
#         --scratch-path /tmp/old-build --product mlp) && cp /tmp/old-build/release/mlp .device/mlp-old
# then, there:
#     Scripts/gpu/compare-binaries.sh .device/mlp-old .device/mlp [ROUNDS] [STEPS] [CONFIGS]
# Prints one line per round, build and configuration (median and fastest step, eager and graph),
# then each configuration's medians side by side. With ncu there, PROFILE=1 adds per-kernel device
# times of mnist's first steps for both builds (ncu-old.csv, ncu-new.csv under $OUT).
set -uo pipefail
cd "$(dirname "$0")/../.."
old=${1:?usage: compare-binaries.sh OLD NEW [ROUNDS] [STEPS] [CONFIGS]}
new=${2:?usage: compare-binaries.sh OLD NEW [ROUNDS] [STEPS] [CONFIGS]}
rounds=${3:-3}
steps=${4:-500}
configs=${5:-tiny mnist}
out=${OUT:-/tmp/mlpkit-gpu-out}
device=${DEVICE:-cuda}   # DEVICE=cpu tries the script where there is no GPU
mkdir -p "$out"
results="$out/compare-binaries.txt"
: > "$results"
for round in $(seq "$rounds"); do
    for build in old new; do
        binary=$old
        [ "$build" = new ] && binary=$new
        for config in $configs; do
            "$binary" bench --device "$device" --config "$config" --steps "$steps" --json > "$out/bench-run.json" || continue
            python3 - "$out/bench-run.json" "$round" "$build" <<'PY' | tee -a "$results"
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(sys.argv[2], sys.argv[3], r["name"], r.get("mode", "-"), f"{r['step_seconds'] * 1e6:.1f}", f"{r['min_seconds'] * 1e6:.1f}")
PY
        done
    done
done
python3 - "$results" <<'PY'
import collections, statistics, sys
medians = collections.defaultdict(list)
for line in open(sys.argv[1]):
    _, build, name, mode, median, _ = line.split()
    medians[(name, mode, build)].append(float(median))
print(f"{'config':7} {'mode':6} {'old µs':>22} {'new µs':>22} {'new/old':>8}")
for name, mode in sorted({(n, m) for n, m, _ in medians}):
    old, new = medians[(name, mode, "old")], medians[(name, mode, "new")]
    cell = lambda xs: "/".join(f"{x:.1f}" for x in xs)
    print(f"{name:7} {mode:6} {cell(old):>22} {cell(new):>22} {statistics.median(new) / statistics.median(old):8.3f}")
PY
if [ "${PROFILE-0}" = 1 ] && command -v ncu >/dev/null; then
    for build in old new; do
        binary=$old
        [ "$build" = new ] && binary=$new
        ncu --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 45 \
            "$binary" bench --device cuda --config mnist --steps 1 --json > "$out/ncu-$build.csv" 2> "$out/ncu-$build.err"
        python3 - "$out/ncu-$build.csv" "$build" <<'PY'
import collections, csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
kernel, value = rows[0].index("Kernel Name"), rows[0].index("Metric Value")
times = collections.defaultdict(list)
for r in rows[1:]:
    times[r[kernel].split("(")[0]].append(float(r[value].replace(",", "")))
print(sys.argv[2], ", ".join(f"{name} {sum(t) / len(t) / 1000:.2f} µs ×{len(t)}" for name, t in sorted(times.items())))
PY
    done
fi
