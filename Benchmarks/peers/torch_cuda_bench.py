#!/usr/bin/env python3
"""The `mlp bench --device cuda` configurations in PyTorch on the GPU, and cuBLAS fp32 sgemm.

For each configuration, full training steps (a batch gathered on the device from a device-resident
data set, forward, the seed's loss, backward, Adam with the seed's hyperparameters) run

  * eager, with torch.optim.Adam's defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8), and
  * with the whole step captured in a CUDA graph (torch.cuda.graph; Adam(capturable=True)) and
    replayed, the batch's row indices copied into the graph's static index tensor before each
    replay.

Timing: CUDA events around chunks of `--chunk` back-to-back steps after `--warmup` steps; the
median over chunks of the time per step (like `mlp bench --device cuda`). GFLOP/s counts
2·B·(3·Σ in·out − h1·h2) per step, as MLPKit does.

cuBLAS: torch.matmul at 4096³ in fp32 with TF32 off (NN, NT and TN through transposed views, which
cuBLAS takes as flags), inputs rotated between two sets, CUDA events per call, the median.

    python3 Benchmarks/peers/torch_cuda_bench.py [--json] [--configs tiny,mnist,wide,large]
"""
import argparse
import json
import statistics
import sys

CONFIGS = [
    ("tiny", [32, 64, 64, 1], 64, "mse"),
    ("mnist", [784, 256, 128, 10], 128, "cross-entropy"),
    ("wide", [1024, 2048, 2048, 1024], 512, "mse"),
    ("large", [4096, 4096, 4096, 4096], 4096, "mse"),
]


def flops(layers, batch):
    pairs = sum(a * b for a, b in zip(layers, layers[1:]))
    return 2 * batch * (3 * pairs - layers[0] * layers[1])


def summary(name, framework, layers, batch, times, final_loss):
    median = statistics.median(times)
    return {"framework": framework, "name": name, "layers": layers, "batch": batch,
            "step_seconds": median, "min_seconds": min(times), "max_seconds": max(times),
            "gflops": flops(layers, batch) / median / 1e9, "final_loss": final_loss}


def make_model(torch, layers):
    modules = []
    for i, (a, b) in enumerate(zip(layers, layers[1:])):
        modules.append(torch.nn.Linear(a, b))
        if i < len(layers) - 2:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules).cuda()


def timed_chunks(torch, step, steps, warmup, chunk):
    """Median-ready list of seconds per step, one per chunk of back-to-back steps."""
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    remaining = steps
    while remaining > 0:
        count = min(chunk, remaining)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(count):
            step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / count)
        remaining -= count
    return times


def bench_config(torch, name, layers, batch, loss_name, steps, warmup, chunk, graphed):
    torch.manual_seed(0)
    model = make_model(torch, layers)
    if graphed:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, capturable=True)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    rows = batch * (2 if batch >= 4096 else 8)
    x = torch.randn(rows, layers[0], device="cuda")
    if loss_name == "mse":
        y = torch.randn(rows, layers[-1], device="cuda")
    else:
        y = torch.randint(0, layers[-1], (rows,), device="cuda")
    # the batches' row indices, drawn up front on the device
    schedule = torch.randint(0, rows, (64, batch), device="cuda")

    def loss_of(out, target):
        if loss_name == "mse":
            return ((out - target) ** 2).sum() / (2 * batch)   # the seed's 1/(2B)·ΣΣ
        return torch.nn.functional.cross_entropy(out, target)

    counter = [0]
    last = [None]
    if not graphed:
        def step():
            index = schedule[counter[0] % schedule.shape[0]]
            counter[0] += 1
            loss = loss_of(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            last[0] = loss
    else:
        static_index = schedule[0].clone()

        def body():
            loss = loss_of(model(x[static_index]), y[static_index])
            loss.backward()
            optimizer.step()
            return loss

        # warm up on a side stream, as torch.cuda.graph requires, then capture the whole step
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                optimizer.zero_grad(set_to_none=True)
                body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            static_loss = body()

        def step():
            static_index.copy_(schedule[counter[0] % schedule.shape[0]])
            counter[0] += 1
            graph.replay()
            last[0] = static_loss

    times = timed_chunks(torch, step, steps, warmup, chunk)
    final_loss = float(last[0].item())
    if final_loss != final_loss:
        raise RuntimeError(f"{name}: the loss is NaN")
    framework = f"pytorch {torch.__version__} " + ("cuda graph" if graphed else "eager")
    return summary(name, framework, layers, batch, times, final_loss)


def bench_sgemm(torch, size, repetitions):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    sets = [(torch.randn(size, size, device="cuda"), torch.randn(size, size, device="cuda")) for _ in range(2)]
    c = torch.empty(size, size, device="cuda")
    layouts = {
        "nn": lambda a, b: torch.matmul(a, b, out=c),
        "nt": lambda a, b: torch.matmul(a, b.t(), out=c),
        "tn": lambda a, b: torch.matmul(a.t(), b, out=c),
    }
    results = []
    for layout, product in layouts.items():
        times = []
        for repetition in range(repetitions + 3):
            a, b = sets[repetition % 2]
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            product(a, b)
            end.record()
            end.synchronize()
            if repetition >= 3:
                times.append(start.elapsed_time(end) / 1e3)
        median = statistics.median(times)
        results.append({"library": "cublas sgemm (torch.matmul, fp32, TF32 off)", "layout": layout, "size": size,
                        "seconds": median, "min_seconds": min(times), "max_seconds": max(times),
                        "tflops": 2 * size ** 3 / median / 1e12})
    # a check that fp32 is really fp32: against a float64 product of the same inputs
    a, b = sets[0]
    reference = torch.matmul(a.double(), b.double())
    error = (torch.matmul(a, b) - reference).norm() / reference.norm()
    return results, float(error)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--configs", default=",".join(c[0] for c in CONFIGS))
    parser.add_argument("--sgemm-size", type=int, default=4096)
    parser.add_argument("--sgemm-repetitions", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch
    if not torch.cuda.is_available():
        print("error: PyTorch sees no CUDA device", file=sys.stderr)
        return 1
    wanted = args.configs.split(",")
    results = []
    for name, layers, batch, loss_name in CONFIGS:
        if name not in wanted:
            continue
        steps = args.steps if batch < 4096 else max(20, args.steps // 5)
        for graphed in (False, True):
            results.append(bench_config(torch, name, layers, batch, loss_name, steps, args.warmup, args.chunk, graphed))
            torch.cuda.empty_cache()
    sgemm, sgemm_error = bench_sgemm(torch, args.sgemm_size, args.sgemm_repetitions)
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
              "tf32": False, "results": results, "sgemm": sgemm, "sgemm_relative_error_vs_float64": sgemm_error}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"device: {report['device']}, torch {report['torch']}, CUDA {report['cuda']}")
    print(f"{'config':7} {'framework':36} {'batch':>6} {'median':>11} {'min':>11} {'GFLOP/s':>10}")
    for r in results:
        print(f"{r['name']:7} {r['framework']:36} {r['batch']:6} {r['step_seconds'] * 1e6:9.1f}µs "
              f"{r['min_seconds'] * 1e6:9.1f}µs {r['gflops']:10.1f}")
    for s in sgemm:
        print(f"sgemm {s['layout']} {s['size']}³: {s['seconds'] * 1e3:.3f} ms, {s['tflops']:.1f} TFLOP/s")
    print(f"sgemm relative error against float64: {sgemm_error:.2e} (fp32 ≈ 1e-6; TF32 would be ≈ 1e-3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
