#!/usr/bin/env python3
"""`mlp bench` against PyTorch and JAX, alternating, with the issue's targets checked per round.

On a shared or noisy machine a single run of each says little: the rate of the same code moves
by tens of percent from one minute to the next. This script runs, for each round and each
configuration, `mlp bench --config C --json` and then `bench_peers.py --config C --json` (PyTorch
and JAX) right after it, so every ratio compares runs seconds apart, and prints each round's
ratios, their medians over the rounds, and in how many rounds each target was met.

    swift build -c release --product mlp
    python3 Benchmarks/peers/compare.py --rounds 3 --steps 300 [--mlp .build/release/mlp] [--json]
    python3 Benchmarks/peers/compare.py --layers 13,64,64,1 --activation tanh [--batch-size B] [--loss L]

With `--layers` (and its options, as `mlp bench --layers` takes them) it compares a network of your
own, the configuration "custom", which has no targets.

The peers run under this script's Python (the one with torch and jax installed).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIGS = ["tiny", "mnist", "wide"]
# the targets of issue 6: (what is compared, at least)
TARGETS = {
    "tiny": [("vs_torch", 15.0)],
    "mnist": [("vs_torch", 3.0), ("vs_jax", 1.2)],
    "wide": [("fraction_of_ceiling", 0.92)],
}


def run_json(command):
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({completed.returncode}): {completed.stderr.strip()}")
    return json.loads(completed.stdout)


def shape_flags(args, config):
    """What picks `config` for both `mlp bench` and bench_peers.py: --config, or --layers and its options."""
    if config != "custom":
        return ["--config", config]
    flags = ["--layers", args.layers]
    for flag, value in (("--batch-size", args.batch_size), ("--loss", args.loss), ("--activation", args.activation)):
        if value is not None:
            flags += [flag, str(value)]
    return flags


def one_round(args, config):
    mlp = run_json([args.mlp, "bench", "--device", "cpu", *shape_flags(args, config), "--steps", str(args.steps), "--json"])
    row = mlp["results"][0]
    peers = run_json([sys.executable, os.path.join(HERE, "bench_peers.py"), *shape_flags(args, config),
                      "--threads", str(args.threads), "--steps", str(args.peer_steps), "--json"])
    result = {"config": config, "mlpkit_seconds": row["step_seconds"], "gflops": row["gflops"],
              "ceiling_gflops": row["ceiling_gflops"], "fraction_of_ceiling": row["fraction_of_ceiling"]}
    for peer in peers["results"]:
        key = "torch" if peer["framework"].startswith("pytorch") else "jax"
        result[f"{key}_seconds"] = peer["step_seconds"]
        result[f"{key}_version"] = peer["framework"]
        result[f"vs_{key}"] = peer["step_seconds"] / row["step_seconds"]
    return result


def needed_seconds(row, key, least):
    """MLPKit's step time that would meet the target `key` ≥ `least` in this round: the peer's step
    over the ratio asked for, or for the ceiling the step that runs at that fraction of it."""
    if key == "fraction_of_ceiling":
        return row["mlpkit_seconds"] * row["fraction_of_ceiling"] / least
    peer = row.get(key.replace("vs_", "") + "_seconds")
    return None if peer is None else peer / least


def milliseconds(value):
    return "—" if value is None else f"{value * 1e3:.3f} ms"


def ratio(value, suffix="×"):
    return "—" if value is None else f"{value:.2f}{suffix}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlp", default=os.path.join(ROOT, ".build", "release", "mlp"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300, help="mlp bench's timed steps per configuration")
    parser.add_argument("--peer-steps", type=int, default=200, help="the peers' timed steps per configuration")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--config", choices=CONFIGS + ["all"])
    parser.add_argument("--layers", help="a network of your own, as mlp bench --layers takes it")
    parser.add_argument("--batch-size", type=int, help="with --layers")
    parser.add_argument("--loss", help="with --layers")
    parser.add_argument("--activation", help="with --layers")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not os.access(args.mlp, os.X_OK):
        sys.exit(f"no mlp at {args.mlp}: build it with `swift build -c release --product mlp` or pass --mlp")
    if args.layers is not None and args.config is not None:
        parser.error("--config and --layers each choose what to run; give one of them")
    configs = ["custom"] if args.layers is not None else [c for c in CONFIGS if (args.config or "all") in ("all", c)]
    rounds = []
    for index in range(args.rounds):
        for config in configs:
            result = one_round(args, config)
            result["round"] = index + 1
            rounds.append(result)
            if not args.json:
                print(f"round {index + 1} {config:<5}  MLPKit {milliseconds(result['mlpkit_seconds'])}"
                      f" ({100 * result['fraction_of_ceiling']:.1f}% of {result['ceiling_gflops']:.1f} GFLOP/s)"
                      f"  PyTorch {milliseconds(result.get('torch_seconds'))} ({ratio(result.get('vs_torch'))})"
                      f"  JAX {milliseconds(result.get('jax_seconds'))} ({ratio(result.get('vs_jax'))})", flush=True)
    summary = []
    for config in configs:
        rows = [r for r in rounds if r["config"] == config]

        def median(key):
            values = [r[key] for r in rows if key in r]
            return statistics.median(values) if values else None

        targets = []
        for key, least in TARGETS.get(config, []):
            met = sum(1 for r in rows if r.get(key) is not None and r[key] >= least)
            counted = sum(1 for r in rows if r.get(key) is not None)
            needs = [n for n in (needed_seconds(r, key, least) for r in rows) if n is not None]
            targets.append({"measure": key, "at_least": least, "met_in": met, "rounds": counted,
                            "needs_seconds": statistics.median(needs) if needs else None})
        summary.append({"config": config, "mlpkit_seconds": median("mlpkit_seconds"),
                        "torch_seconds": median("torch_seconds"), "jax_seconds": median("jax_seconds"),
                        "vs_torch": median("vs_torch"), "vs_jax": median("vs_jax"),
                        "fraction_of_ceiling": median("fraction_of_ceiling"), "targets": targets})
    if args.json:
        print(json.dumps({"rounds": rounds, "summary": summary}))
        return
    print()
    print("| config | MLPKit | PyTorch | JAX | vs PyTorch | vs JAX | of ceiling | targets |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in summary:
        verdicts = "; ".join(
            f"{t['measure'].replace('fraction_of_ceiling', 'ceiling').replace('vs_', '')} ≥ "
            f"{t['at_least']:g}{'' if t['measure'] == 'fraction_of_ceiling' else '×'}: {t['met_in']} of {t['rounds']}"
            f" (asks for {milliseconds(t['needs_seconds'])})"
            for t in s["targets"]) or "—"
        print(f"| {s['config']} | {milliseconds(s['mlpkit_seconds'])} | {milliseconds(s['torch_seconds'])}"
              f" | {milliseconds(s['jax_seconds'])} | {ratio(s['vs_torch'])} | {ratio(s['vs_jax'])}"
              f" | {100 * s['fraction_of_ceiling']:.1f}% | {verdicts} |")
    print(f"(medians over {args.rounds} rounds; ratios are each round's, then their median; \"asks for\":"
          " the MLPKit step that would meet the target, the median over the rounds)")


if __name__ == "__main__":
    main()
