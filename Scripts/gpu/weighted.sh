#!/usr/bin/env bash
# On the GPU machine: the weighted losses (row weights, class weights, positive weights) trained
# on the GPU, against PyTorch's own losses and against the CPU backend. Called by run-on-gpu.sh;
# alone: Scripts/gpu/weighted.sh OUT_FOLDER [MLP]. Exits non-zero when any comparison fails.
#   1. one full-batch step at --lr 0 on --device cuda for each loss, checked by
#      Scripts/pytorch_weighted_loss.py (loss and gradient in float64 against PyTorch's losses)
#   2. 200 weighted steps of mini-batches on cuda and on the CPU: final loss and every tensor of
#      the two checkpoints, ‖cuda − cpu‖/‖cpu‖
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: weighted.sh OUT_FOLDER [MLP]}
mlp=${2:-.device/mlp}
gpu=${DEVICE:-cuda}   # DEVICE=opencl runs the same checks through OpenCL (PoCL) here
work="$out/weighted"   # the data, runs and checkpoints; only the report goes to stdout
mkdir -p "$work"

python3 - "$work" <<'PY'
import sys
import numpy as np
rng = np.random.default_rng(7)
n = 1000
x = rng.standard_normal((n, 3))
w = rng.uniform(0, 3, n)
def save(name, columns, values):
    np.savetxt(f"{sys.argv[1]}/{name}.csv", values, delimiter=",", header=",".join(columns), comments="", fmt="%.7g")
spam = (x[:, 0] + 0.3 * rng.standard_normal(n) > 0).astype(float)
urgent = (x[:, 1] > 1.4).astype(float)
save("tags", ["a", "b", "c", "spam", "urgent", "w"], np.column_stack([x, spam, urgent, w]))
label = np.digitize(x[:, 2], [-0.5, 0.7]).astype(float)
save("classes", ["a", "b", "c", "label", "w"], np.column_stack([x, label, w]))
y = np.sin(2 * x[:, 0]) - x[:, 1]
save("reg", ["a", "b", "c", "y", "w"], np.column_stack([x, y, w]))
PY

status=0
one_step=(--hidden 16,8 --steps 1 --batch-size 1000 --no-shuffle --lr 0 --json)
# name data targets loss extra-arguments...
case_step() {
    local name=$1 data=$2 targets=$3 loss=$4
    shift 4
    echo "== $name"
    for device in "$gpu" cpu; do
        "$mlp" train --device "$device" --data "$work/$data.csv" --target "$targets" --loss "$loss" \
            --weight-column w "$@" "${one_step[@]}" --out "$work/$name-$device.safetensors" \
            > "$work/$name-$device.json" 2> "$work/$name-$device.err" || { echo "train on $device failed"; cat "$work/$name-$device.err"; status=1; }
    done
    python3 Scripts/pytorch_weighted_loss.py "$work/$name-$gpu.safetensors" "$work/$name-$gpu.json" \
        "$work/$data.csv" "$targets" "$loss" --weight-column w "$@" || status=1
    python3 - "$work/$name-$gpu.json" "$work/$name-cpu.json" "$gpu" <<'PY' || status=1
import json, sys
gpu, cpu = (json.load(open(p))["final_loss"] for p in sys.argv[1:3])
print(f"loss: {sys.argv[3]} {gpu:.9g}, cpu {cpu:.9g}, relative difference {abs(gpu - cpu) / abs(cpu):.2e}")
sys.exit(int(abs(gpu - cpu) > 1e-5 * abs(cpu)))
PY
}
case_step bce tags spam,urgent binary-cross-entropy --pos-weight 2,7
case_step ce classes label cross-entropy --class-weight 0.5,3,1.5
case_step mse reg y mse

echo "== 200 steps, batch 64, --pos-weight balanced --weight-column w: $gpu against cpu"
for device in "$gpu" cpu; do
    "$mlp" train --device "$device" --data "$work/tags.csv" --target spam,urgent --loss binary-cross-entropy \
        --pos-weight balanced --weight-column w --hidden 32,16 --steps 200 --batch-size 64 --json \
        --out "$work/long-$device.safetensors" > "$work/long-$device.json" 2> "$work/long-$device.err" \
        || { echo "train on $device failed"; cat "$work/long-$device.err"; status=1; }
done
python3 - "$work" "$gpu" <<'PY' || status=1
import json, sys
import numpy as np
from safetensors.numpy import load_file
work, device = sys.argv[1:3]
gpu, cpu = (load_file(f"{work}/long-{d}.safetensors") for d in (device, "cpu"))
worst = max(np.linalg.norm(gpu[k].astype(np.float64) - cpu[k]) / max(np.linalg.norm(cpu[k]), 1e-30) for k in cpu)
losses = [json.load(open(f"{work}/long-{d}.json"))["final_loss"] for d in (device, "cpu")]
print(f"final loss: {device} {losses[0]:.9g}, cpu {losses[1]:.9g}; worst tensor ‖{device} − cpu‖/‖cpu‖ {worst:.2e} over {len(cpu)} tensors")
sys.exit(int(worst > 1e-4))
PY
exit $status
