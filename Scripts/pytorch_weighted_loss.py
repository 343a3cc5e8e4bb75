#!/usr/bin/env python3
"""Checks MLPKit's weighted losses against PyTorch's: loss and gradient, in float64.

A run of one full-batch step with a learning rate of 0 leaves the parameters as they were and
records the step's loss (`--json`'s final_loss) and its gradient (Adam's first moment after one
step is (1 − β1)·g, so g = m / 0.1). This script rebuilds the network in PyTorch from the
checkpoint, computes the same weighted loss with PyTorch's own losses (CrossEntropyLoss with
`weight`, BCEWithLogitsLoss with `pos_weight`, squared error; each row times its weight, the
rows' sum over the batch's rows, outputs summed per row as MLPKit does, MSE halved), and prints
the relative differences.

    pip install torch safetensors numpy
    mlp train --data tags.csv --target spam,urgent --loss binary-cross-entropy --pos-weight 2,7 \\
        --weight-column w --hidden 16,8 --steps 1 --batch-size 1000 --no-shuffle --lr 0 \\
        --json --out step.safetensors > step.json
    python3 Scripts/pytorch_weighted_loss.py step.safetensors step.json tags.csv spam,urgent \\
        binary-cross-entropy --pos-weight 2,7 --weight-column w

With --class-weight W0,W1,… (cross-entropy; one integer class column as the target) in place of
--pos-weight for class weights. The CSV holds numbers only; every column but the targets and the
weight column is an input, in file order.
"""
import argparse
import json

import numpy as np
import torch
from safetensors.torch import load_file


def main():
    parser = argparse.ArgumentParser()
    for name in ["checkpoint", "run_json", "csv", "targets", "loss"]:
        parser.add_argument(name)
    parser.add_argument("--pos-weight")
    parser.add_argument("--class-weight")
    parser.add_argument("--weight-column")
    arguments = parser.parse_args()

    state = {key: value.double() for key, value in load_file(arguments.checkpoint).items()}
    header = open(arguments.csv).readline().strip().split(",")
    data = np.loadtxt(arguments.csv, delimiter=",", skiprows=1, ndmin=2)
    targets = arguments.targets.split(",")
    weight_column = arguments.weight_column
    inputs = [i for i, name in enumerate(header) if name not in targets and name != weight_column]
    x = torch.tensor(data[:, inputs])
    y = torch.tensor(data[:, [header.index(name) for name in targets]])
    w = torch.tensor(data[:, header.index(weight_column)]) if weight_column else torch.ones(len(data), dtype=torch.float64)

    count = sum(1 for key in state if key.startswith("W"))
    parameters = {}
    for i in range(1, count + 1):
        for name in (f"W{i}", f"b{i}"):
            parameters[name] = state[name].clone().requires_grad_(True)
    h = x
    for i in range(1, count + 1):
        h = h @ parameters[f"W{i}"].T + parameters[f"b{i}"]
        if i < count:
            h = torch.relu(h)

    def weights(text):
        return torch.tensor([float(v) for v in text.split(",")], dtype=torch.float64) if text else None

    if arguments.loss == "binary-cross-entropy":
        per_row = torch.nn.BCEWithLogitsLoss(pos_weight=weights(arguments.pos_weight), reduction="none")(h, y).sum(1)
    elif arguments.loss == "cross-entropy":
        per_row = torch.nn.CrossEntropyLoss(weight=weights(arguments.class_weight), reduction="none")(h, y[:, 0].long())
    else:
        per_row = 0.5 * ((h - y) ** 2).sum(1)
    loss = (per_row * w).mean()
    loss.backward()

    ours = json.load(open(arguments.run_json))["final_loss"]
    print(f"loss: PyTorch {loss.item():.9g}, MLPKit {ours:.9g}, relative difference {abs(ours - loss.item()) / abs(loss.item()):.2e}")
    worst = 0.0
    for name, parameter in parameters.items():
        mine = state[f"adam.m.{name}"] / 0.1
        worst = max(worst, ((parameter.grad - mine).norm() / parameter.grad.norm()).item())
    print(f"gradient: largest relative difference of a tensor {worst:.2e}")


if __name__ == "__main__":
    main()
