#!/usr/bin/env python3
"""Independent NumPy float64 reference for MLPKit's trainer (math from SEED.md).

What it computes
----------------
A fully connected network with layer sizes [n0, n1, ..., nL] (L >= 1 linear
layers): Z_i = A_{i-1} . W_i^T + b_i, A_i = ReLU(Z_i) for hidden layers, and a
linear output Z_L. W_i has shape [n_i x n_{i-1}], b_i has shape [n_i].

Losses, for a batch of B rows:
  * "mse":           L = 1/(2B) sum (Z_L - Y)^2,             dZ_L = (Z_L - Y)/B
  * "cross-entropy": L = -1/B sum Y * log softmax(Z_L)       (log-sum-exp stable)
                     dZ_L = (softmax(Z_L) - Y)/B; integer labels become one-hot Y.
Backward (SEED.md section 5 generalised to L layers):
  dW_i = dZ_i^T . A_{i-1},  db_i = sum over rows of dZ_i,
  dZ_{i-1} = (dZ_i . W_i) * (Z_{i-1} > 0).
Adam (SEED.md section 4), t starting at 1, one shared t for all parameters:
  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  mh = m/(1-b1^t);  vh = v/(1-b2^t);
  theta -= lr * mh / (sqrt(vh) + eps).
Training: no shuffling; batches are consecutive rows in file order; the last,
partial batch of an epoch is used with its own (smaller) size, which is the B
its loss and gradient divide by; the next epoch starts again at row 0.
Exactly `steps` steps are run.

Initial parameters (uniform in +-1/sqrt(fan_in)), inputs X (standard normal)
and dense targets are drawn from numpy's default_rng with a fixed seed per case
and rounded to float32 values, so float32 code can start from exactly the same
numbers. Probability targets are multiples of 1/1024 so every row sums to
exactly 1 in both float32 and float64.

Each case is written to <case>.json in this folder with the keys
  layers, loss, targets, batch_size, steps, learning_rate, beta1, beta2,
  epsilon, x, y, initial_parameters, losses, final_parameters,
  final_first_moment, final_second_moment, gradients_first_step
All parameter-shaped lists are flat in the order W1 (row-major), b1, W2, b2,
..., WL, bL. "losses" holds the batch loss of each step, computed in the
forward pass before that step's update. Floats are written with repr (full
float64 precision).

Regenerate:   cd Tests/MLPKitTests/Fixtures/reference && python3 make_reference.py
Self-check:   python3 make_reference.py --check
  (compares the analytic gradients of step 1, and of the first partial-batch
  step, with central finite differences, h = 1e-6, for every parameter of
  every case; asserts max relative error < 1e-6 (elementwise, scale floored
  at 1e-3, and normwise); writes no files.)
Needs only numpy.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def f32(a):
    """Round to the nearest float32 value, kept as float64."""
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


# ---------------------------------------------------------------- the model --

def init_params(layers, rng):
    params = []
    for fan_in, fan_out in zip(layers[:-1], layers[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        W = f32(rng.uniform(-bound, bound, size=(fan_out, fan_in)))
        b = f32(rng.uniform(-bound, bound, size=(fan_out,)))
        params += [W, b]
    return params


def flatten(arrays):
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def one_hot(labels, n):
    Y = np.zeros((len(labels), n), dtype=np.float64)
    Y[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    return Y


def forward(params, X):
    """Returns (list of Z_i, list of A_i with A_0 = X)."""
    nlayers = len(params) // 2
    A = [X]
    Zs = []
    for i in range(nlayers):
        W, b = params[2 * i], params[2 * i + 1]
        Z = A[-1] @ W.T + b
        Zs.append(Z)
        if i < nlayers - 1:
            A.append(np.maximum(Z, 0.0))
    return Zs, A


def log_softmax(Z):
    m = Z.max(axis=1, keepdims=True)
    S = Z - m
    return S - np.log(np.exp(S).sum(axis=1, keepdims=True))


def loss_and_dz(ZL, Y, loss):
    B = ZL.shape[0]
    if loss == "mse":
        D = ZL - Y
        return 0.5 * np.sum(D * D) / B, D / B
    if loss == "cross-entropy":
        ls = log_softmax(ZL)
        return -np.sum(Y * ls) / B, (np.exp(ls) - Y) / B
    raise ValueError(loss)


def loss_only(params, X, Y, loss):
    Zs, _ = forward(params, X)
    return loss_and_dz(Zs[-1], Y, loss)[0]


def loss_and_grads(params, X, Y, loss):
    Zs, A = forward(params, X)
    L, dZ = loss_and_dz(Zs[-1], Y, loss)
    nlayers = len(params) // 2
    grads = [None] * len(params)
    for i in range(nlayers - 1, -1, -1):
        W = params[2 * i]
        grads[2 * i] = dZ.T @ A[i]
        grads[2 * i + 1] = dZ.sum(axis=0)
        if i > 0:
            dZ = (dZ @ W) * (Zs[i - 1] > 0.0)
    return L, grads


def batch_rows(step, n, bs):
    """Row range of 0-based step `step`: consecutive, partial tail, wrap per epoch."""
    per_epoch = -(-n // bs)
    k = step % per_epoch
    start = k * bs
    return start, min(start + bs, n)


def train(case):
    params = [p.copy() for p in case["params0"]]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, b1, b2, eps = case["lr"], case["beta1"], case["beta2"], case["eps"]
    X, Y = case["X"], case["Ydense"]
    losses, first_grads = [], None
    for step in range(case["steps"]):
        s, e = batch_rows(step, X.shape[0], case["batch_size"])
        L, g = loss_and_grads(params, X[s:e], Y[s:e], case["loss"])
        losses.append(L)
        if first_grads is None:
            first_grads = [x.copy() for x in g]
        t = step + 1
        for j in range(len(params)):
            m[j] = b1 * m[j] + (1.0 - b1) * g[j]
            v[j] = b2 * v[j] + (1.0 - b2) * g[j] * g[j]
            mh = m[j] / (1.0 - b1 ** t)
            vh = v[j] / (1.0 - b2 ** t)
            params[j] = params[j] - lr * mh / (np.sqrt(vh) + eps)
    return losses, first_grads, params, m, v


# ----------------------------------------------------------------- the cases --

def make_case(name, layers, loss, targets, n, bs, lr, seed, steps=20,
              beta1=0.9, beta2=0.999, eps=1e-8):
    rng = np.random.default_rng(seed)
    params0 = init_params(layers, rng)
    X = f32(rng.standard_normal((n, layers[0])))
    nout = layers[-1]
    if targets == "labels":
        labels = rng.integers(0, nout, size=n)
        y_out = [int(k) for k in labels]
        Ydense = one_hot(labels, nout)
    elif targets == "probabilities":
        # random positive rows, normalised to sum 1, as multiples of 1/1024
        Ydense = np.empty((n, nout))
        for r in range(n):
            w = rng.random(nout) + 0.1
            k = np.maximum(np.floor(w / w.sum() * 1024.0), 1.0)
            k[np.argmax(k)] += 1024.0 - k.sum()
            assert np.all(k >= 1) and k.sum() == 1024.0
            Ydense[r] = k / 1024.0
        assert np.all(Ydense.sum(axis=1) == 1.0) and np.array_equal(f32(Ydense), Ydense)
        y_out = Ydense.ravel().tolist()
    else:  # normal dense targets
        Ydense = f32(rng.standard_normal((n, nout)))
        y_out = Ydense.ravel().tolist()
    return dict(name=name, layers=layers, loss=loss,
                targets="labels" if targets == "labels" else "dense",
                batch_size=bs, steps=steps, lr=lr, beta1=beta1, beta2=beta2,
                eps=eps, params0=params0, X=X, Ydense=Ydense, y_out=y_out)


CASES = [
    dict(name="mse_deep", layers=[5, 7, 6, 4, 3], loss="mse", targets="normal",
         n=11, bs=4, lr=1e-3, seed=1001),
    dict(name="ce_labels", layers=[6, 8, 5, 4], loss="cross-entropy",
         targets="labels", n=10, bs=3, lr=1e-2, seed=2002),
    dict(name="ce_probabilities", layers=[4, 9, 3], loss="cross-entropy",
         targets="probabilities", n=7, bs=5, lr=1e-3, seed=3003),
    dict(name="mse_seed", layers=[8, 16, 12, 2], loss="mse", targets="normal",
         n=9, bs=9, lr=5e-3, seed=4004),
]


def build(spec):
    return make_case(spec["name"], spec["layers"], spec["loss"], spec["targets"],
                     spec["n"], spec["bs"], spec["lr"], spec["seed"])


def to_json(case):
    losses, g1, pf, m, v = train(case)
    out = {
        "layers": case["layers"],
        "loss": case["loss"],
        "targets": case["targets"],
        "batch_size": case["batch_size"],
        "steps": case["steps"],
        "learning_rate": case["lr"],
        "beta1": case["beta1"],
        "beta2": case["beta2"],
        "epsilon": case["eps"],
        "x": case["X"].ravel().tolist(),
        "y": case["y_out"],
        "initial_parameters": flatten(case["params0"]).tolist(),
        "losses": [float(x) for x in losses],
        "final_parameters": flatten(pf).tolist(),
        "final_first_moment": flatten(m).tolist(),
        "final_second_moment": flatten(v).tolist(),
        "gradients_first_step": flatten(g1).tolist(),
    }
    return out


# ------------------------------------------------------------- self-check ----

def fd_check(params, X, Y, loss, h=1e-6):
    """Analytic vs central-difference gradient, for every parameter.

    Returns (max elementwise relative error, normwise error, max abs error).
    Elementwise: |a - n| / max(|a|, |n|, 1e-3). The 1e-3 floor is there
    because the rounding error of a float64 central difference with h = 1e-6
    is about eps * L / h ~ 1e-10 absolute, so entries far below 1e-3 (and the
    exact zeros of dead ReLUs) can only be compared absolutely.
    Normwise: max|a - n| / max|a| over the whole gradient.
    """
    _, grads = loss_and_grads(params, X, Y, loss)
    ana_all, num_all = [], []
    for j, p in enumerate(params):
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            p[idx] = orig + h
            lp = loss_only(params, X, Y, loss)
            p[idx] = orig - h
            lm = loss_only(params, X, Y, loss)
            p[idx] = orig
            num[idx] = (lp - lm) / (2.0 * h)
        ana_all.append(grads[j].ravel())
        num_all.append(num.ravel())
    a, n = np.concatenate(ana_all), np.concatenate(num_all)
    err = np.abs(a - n)
    rel = float(np.max(err / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-3)))
    normwise = float(err.max() / np.abs(a).max())
    return rel, normwise, float(err.max())


def params_before_step(case, k):
    """Parameters just before 0-based step k (re-runs the first k steps)."""
    c = dict(case)
    c["steps"] = k
    if k == 0:
        return [p.copy() for p in case["params0"]]
    return train(c)[2]


def check():
    ok = True
    fmt = "max rel {:.3e}, normwise {:.3e}, max abs {:.3e}"
    for spec in CASES:
        case = build(spec)
        n, bs = case["X"].shape[0], case["batch_size"]
        # step 1 (as stored in gradients_first_step)
        s, e = batch_rows(0, n, bs)
        p = [x.copy() for x in case["params0"]]
        r1 = fd_check(p, case["X"][s:e], case["Ydense"][s:e], case["loss"])
        ok &= r1[0] < 1e-6 and r1[1] < 1e-6
        # also the first step whose batch is partial (if any)
        extra = ""
        for k in range(case["steps"]):
            s2, e2 = batch_rows(k, n, bs)
            if e2 - s2 < bs:
                pk = params_before_step(case, k)
                r2 = fd_check(pk, case["X"][s2:e2], case["Ydense"][s2:e2], case["loss"])
                extra = f"\n{'':22s}step {k + 1} (partial batch of {e2 - s2}): " + fmt.format(*r2)
                ok &= r2[0] < 1e-6 and r2[1] < 1e-6
                break
        nparams = sum(x.size for x in case["params0"])
        print(f"{case['name']:17s} {nparams:4d} params  step 1: " + fmt.format(*r1) + extra)
    assert ok, "finite-difference check failed (max relative error >= 1e-6)"
    print("FD check passed (all max relative errors < 1e-6)")


def main():
    if "--check" in sys.argv[1:]:
        check()
        return
    for spec in CASES:
        case = build(spec)
        path = os.path.join(HERE, case["name"] + ".json")
        with open(path, "w") as fh:
            json.dump(to_json(case), fh)  # json writes floats with repr
            fh.write("\n")
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
