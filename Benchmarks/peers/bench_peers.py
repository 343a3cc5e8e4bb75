#!/usr/bin/env python3
"""The `mlp bench` configurations in PyTorch and JAX, for comparison on the same machine.

Each framework runs full training steps (forward, the seed's loss, backward, Adam with the
seed's hyperparameters) on random data after a warm-up, and reports the median, min and max
step time and GFLOP/s, counting 2·B·(3·Σ in·out − h1·h2) per step like `mlp bench`.

    pip install torch jax            # whichever you have
    python3 Benchmarks/peers/bench_peers.py --threads 2 --steps 200 [--config mnist] [--json]

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


def bench_torch(threads, steps, warmup, configs):
    import torch
    torch.set_num_threads(threads)
    results = []
    for name, layers, batch, loss_name in configs:
        torch.manual_seed(0)
        modules = []
        for i, (a, b) in enumerate(zip(layers, layers[1:])):
            modules.append(torch.nn.Linear(a, b))
            if i < len(layers) - 2:
                modules.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*modules)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        rows = batch * 8
        x = torch.randn(rows, layers[0])
        if loss_name == "mse":
            y = torch.randn(rows, layers[-1])
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
    for name, layers, batch, loss_name in configs:
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
                    a = jax.nn.relu(a)
            if loss_name == "mse":
                return jnp.sum((a - yb) ** 2) / (2 * xb.shape[0])
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
        y = (jax.random.normal(k2, (rows, layers[-1])) if loss_name == "mse"
             else jax.random.randint(k2, (rows,), 0, layers[-1]))
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=["torch", "jax"])
    parser.add_argument("--config", choices=[c[0] for c in CONFIGS] + ["all"], default="all")
    args = parser.parse_args()
    configs = [c for c in CONFIGS if args.config in ("all", c[0])]
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
