#!/usr/bin/env python3
"""The `mlp bench` configurations in PyTorch and JAX, for comparison on the same machine.

Each framework runs full training steps (forward, the seed's loss, backward, Adam with the
seed's hyperparameters) on random data after a warm-up, and reports the median, min and max
step time and GFLOP/s, counting 2·B·(3·Σ in·out − h1·h2) per step like `mlp bench`.

    pip install torch jax            # whichever you have
    python3 Benchmarks/peers/bench_peers.py --threads 2 --steps 200 [--config mnist] [--json]
    python3 Benchmarks/peers/bench_peers.py --layers 13,64,64,1 --activation tanh [--batch-size 128] [--loss mse]

`--layers` (with `--batch-size`, `--loss` and `--activation`, as `mlp bench --layers` takes them)
runs a network of your own as the configuration "custom".

PyTorch uses torch.optim.Adam and torch.set_num_threads(threads); JAX jit-compiles the whole
step (Adam written out as in the seed) and is limited to `threads` through XLA's flags.
"""
import argparse
import json
import os
import statistics
import sys
import time

CONFIGS = [
    ("tiny", [32, 64, 64, 1], 64, "mse"),
    ("mnist", [784, 256, 128, 10], 128, "cross-entropy"),
    ("wide", [1024, 2048, 2048, 1024], 512, "mse"),
]


def flops(layers, batch):
    pairs = sum(a * b for a, b in zip(layers, layers[1:]))
    return 2 * batch * (3 * pairs - layers[0] * layers[1])


def summary(name, framework, layers, batch, times):
    median = statistics.median(times)
    return {"framework": framework, "name": name, "layers": layers, "batch": batch,
            "step_seconds": median, "min_seconds": min(times), "max_seconds": max(times),
            "gflops": flops(layers, batch) / median / 1e9}


ACTIVATIONS = ["relu", "leaky-relu", "tanh", "sigmoid", "gelu"]
LOSSES = ["mse", "cross-entropy", "binary-cross-entropy"]


def torch_activation(torch, name):
    return {"relu": lambda: torch.nn.ReLU(), "leaky-relu": lambda: torch.nn.LeakyReLU(0.01),
            "tanh": lambda: torch.nn.Tanh(), "sigmoid": lambda: torch.nn.Sigmoid(),
            "gelu": lambda: torch.nn.GELU(approximate="tanh")}[name]()


def bench_torch(threads, steps, warmup, configs):
    import torch
    torch.set_num_threads(threads)
    results = []
    for name, layers, batch, loss_name, *rest in configs:
        activation = rest[0] if rest else "relu"
        torch.manual_seed(0)
        modules = []
        for i, (a, b) in enumerate(zip(layers, layers[1:])):
            modules.append(torch.nn.Linear(a, b))
            if i < len(layers) - 2:
                modules.append(torch_activation(torch, activation))
        model = torch.nn.Sequential(*modules)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        rows = batch * 8
        x = torch.randn(rows, layers[0])
        if loss_name == "mse":
            y = torch.randn(rows, layers[-1])
        elif loss_name == "binary-cross-entropy":
            y = torch.randint(0, 2, (rows, layers[-1])).float()
        else:
            y = torch.randint(0, layers[-1], (rows,))
        times = []
        for step in range(warmup + steps):
            index = torch.randint(0, rows, (batch,))
            start = time.perf_counter()
            xb, yb = x[index], y[index]
            out = model(xb)
            if loss_name == "mse":
                loss = ((out - yb) ** 2).sum() / (2 * batch)   # the seed's 1/(2B)·ΣΣ
            elif loss_name == "binary-cross-entropy":            # −1/B·ΣΣ, as mlp's
                loss = torch.nn.functional.binary_cross_entropy_with_logits(out, yb, reduction="sum") / batch
            else:
                loss = torch.nn.functional.cross_entropy(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step >= warmup:
                times.append(time.perf_counter() - start)
        results.append(summary(name, f"pytorch {torch.__version__}", layers, batch, times))
    return results


def bench_jax(threads, steps, warmup, configs):
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}")
    import jax
    import jax.numpy as jnp
    results = []
    for name, layers, batch, loss_name, *rest in configs:
        activation = {"relu": jax.nn.relu, "leaky-relu": lambda a: jax.nn.leaky_relu(a, 0.01), "tanh": jnp.tanh,
                      "sigmoid": jax.nn.sigmoid, "gelu": lambda a: jax.nn.gelu(a, approximate=True)}[rest[0] if rest else "relu"]
        key = jax.random.PRNGKey(0)
        params = []
        for a, b in zip(layers, layers[1:]):
            key, k1, k2 = jax.random.split(key, 3)
            bound = 1 / a ** 0.5
            params.append((jax.random.uniform(k1, (b, a), minval=-bound, maxval=bound),
                           jax.random.uniform(k2, (b,), minval=-bound, maxval=bound)))

        def loss_fn(params, xb, yb):
            a = xb
            for i, (w, b) in enumerate(params):
                a = a @ w.T + b
                if i < len(params) - 1:
                    a = activation(a)
            if loss_name == "mse":
                return jnp.sum((a - yb) ** 2) / (2 * xb.shape[0])
            if loss_name == "binary-cross-entropy":
                return jnp.sum(jnp.maximum(a, 0) - a * yb + jnp.log1p(jnp.exp(-jnp.abs(a)))) / xb.shape[0]
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(a), yb[:, None], axis=1))

        @jax.jit
        def step_fn(params, m, v, t, xb, yb):
            loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
            t = t + 1
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
            v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
            c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
            params = jax.tree_util.tree_map(
                lambda p, m, v: p - 1e-3 * (m / c1) / (jnp.sqrt(v / c2) + 1e-8), params, m, v)
            return params, m, v, t, loss

        m = jax.tree_util.tree_map(jnp.zeros_like, params)
        v = jax.tree_util.tree_map(jnp.zeros_like, params)
        t = jnp.float32(0)
        rows = batch * 8
        key, k1, k2 = jax.random.split(key, 3)
        x = jax.random.normal(k1, (rows, layers[0]))
        if loss_name == "mse":
            y = jax.random.normal(k2, (rows, layers[-1]))
        elif loss_name == "binary-cross-entropy":
            y = jax.random.bernoulli(k2, 0.5, (rows, layers[-1])).astype(jnp.float32)
        else:
            y = jax.random.randint(k2, (rows,), 0, layers[-1])
        times = []
        for step in range(warmup + steps):
            start_row = (step % 8) * batch
            start = time.perf_counter()
            xb, yb = x[start_row:start_row + batch], y[start_row:start_row + batch]
            params, m, v, t, loss = step_fn(params, m, v, t, xb, yb)
            loss.block_until_ready()
            if step >= warmup:
                times.append(time.perf_counter() - start)
        results.append(summary(name, f"jax {jax.__version__}", layers, batch, times))
    return results


def custom_configs(parser, args):
    """[("custom", layers, batch, loss, activation)] from --layers and its options, or [] without it."""
    if args.layers is None:
        for flag, value in (("--batch-size", args.batch_size), ("--loss", args.loss), ("--activation", args.activation)):
            if value is not None:
                parser.error(f"{flag} goes with --layers")
        return []
    if args.config is not None:
        parser.error("--config and --layers each choose what to run; give one of them")
    try:
        layers = [int(part) for part in args.layers.split(",")]
    except ValueError:
        parser.error(f"--layers takes sizes separated by commas, like 784,256,10, not {args.layers}")
    if len(layers) < 2 or min(layers) < 1 or (args.batch_size is not None and args.batch_size < 1):
        parser.error("--layers needs two or more positive sizes and --batch-size a positive count")
    return [("custom", layers, args.batch_size or 128, args.loss or "mse", args.activation or "relu")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=["torch", "jax"])
    parser.add_argument("--config", choices=[c[0] for c in CONFIGS] + ["all"])
    parser.add_argument("--layers", help="a network of your own: sizes from the inputs to the outputs, like 784,256,10")
    parser.add_argument("--batch-size", type=int, help="with --layers (default 128)")
    parser.add_argument("--loss", choices=LOSSES, help="with --layers (default mse)")
    parser.add_argument("--activation", choices=ACTIVATIONS, help="with --layers (default relu)")
    args = parser.parse_args()
    configs = custom_configs(parser, args) or [c for c in CONFIGS if (args.config or "all") in ("all", c[0])]
    results = []
    for framework, function in (("torch", bench_torch), ("jax", bench_jax)):
        if args.only and args.only != framework:
            continue
        try:
            results += function(args.threads, args.steps, args.warmup, configs)
        except ImportError as error:
            print(f"skipping {framework}: {error}", file=sys.stderr)
    if args.json:
        print(json.dumps({"results": results}))
        return
    for r in results:
        print(f"{r['framework']:<22} {r['name']:<6} median {r['step_seconds'] * 1e3:9.3f} ms  "
              f"min {r['min_seconds'] * 1e3:9.3f} ms  max {r['max_seconds'] * 1e3:9.3f} ms  {r['gflops']:7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
