#!/usr/bin/env python3
"""Checks that an MLPKit checkpoint and PyTorch agree, both ways.

Loads CHECKPOINT into a torch.nn.Sequential of Linear/ReLU layers (as the README shows), runs it
on the CSV's feature columns, compares the softmax probabilities with `mlp predict`'s output
(PREDICTIONS.npy: class, then probabilities), and writes the model back as a W/b-only safetensors
file that `mlp eval --loss cross-entropy` reads.

    pip install torch safetensors numpy
    mlp train --data digits.csv --target label --out model.safetensors
    mlp predict --model model.safetensors --data digits.csv --target label --out predictions.npy
    python3 Scripts/pytorch_interop.py model.safetensors digits.csv label predictions.npy from_torch.safetensors
    mlp eval --model from_torch.safetensors --data digits.csv --target label --loss cross-entropy
"""
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def main(checkpoint, csv_path, target, predictions, out):
    state = load_file(checkpoint)
    count = sum(1 for key in state if key.startswith("W"))
    layers = []
    for i in range(1, count + 1):
        outputs, inputs = state[f"W{i}"].shape
        linear = torch.nn.Linear(inputs, outputs)
        linear.weight.data, linear.bias.data = state[f"W{i}"], state[f"b{i}"]
        layers += [linear] + ([torch.nn.ReLU()] if i < count else [])
    model = torch.nn.Sequential(*layers)

    header = open(csv_path).readline().strip().split(",")
    data = np.loadtxt(csv_path, delimiter=",", skiprows=1, dtype=np.float32)
    features = np.delete(data, header.index(target), axis=1)
    with torch.no_grad():
        probabilities = torch.softmax(model(torch.from_numpy(features)), dim=1).numpy()
    ours = np.load(predictions)
    agree = (ours[:, 0] == probabilities.argmax(1)).mean()
    difference = np.abs(ours[:, 1:] - probabilities).max()
    print(f"classes agree on {agree:.4f} of rows; largest probability difference {difference:.2e}")

    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    tensors = {}
    for i, linear in enumerate(linears, start=1):
        tensors[f"W{i}"] = linear.weight.detach().float().contiguous()
        tensors[f"b{i}"] = linear.bias.detach().float().contiguous()
    save_file(tensors, out)
    print(f"wrote {out}")
    return 0 if agree == 1.0 and difference < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
