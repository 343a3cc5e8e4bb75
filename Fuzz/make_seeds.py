#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (small, valid files) into Fuzz/Corpus/<reader>/.

Python 3 standard library only. The files are committed; rerun this after changing it:
    python3 Fuzz/make_seeds.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(reader, name, data):
    folder = os.path.join(HERE, "Corpus", reader)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# --- safetensors checkpoints ------------------------------------------------------------------

def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in order."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def mlp_tensors(sizes, prefix="", start=0.0):
    tensors, k = [], start
    for i in range(1, len(sizes)):
        n_w, n_b = sizes[i] * sizes[i - 1], sizes[i]
        tensors.append((f"{prefix}W{i}", "F32", [sizes[i], sizes[i - 1]], f32([k + 0.25 * j for j in range(n_w)])))
        tensors.append((f"{prefix}b{i}", "F32", [sizes[i]], f32([-0.5 * j for j in range(n_b)])))
        k += 1
    return tensors


sizes = [2, 3, 2]
full_meta = {"format": "mlpkit", "layers": "2,3,2", "activation": "relu", "loss": "cross-entropy",
             "adam.step": "7", "adam.learning_rate": "0.001", "adam.beta1": "0.9", "adam.beta2": "0.999",
             "adam.epsilon": "1e-08", "training.seed": "0", "training.batch_size": "128", "training.shuffle": "true"}
adam = mlp_tensors(sizes, "adam.m.", 0.1) + [(n, d, s, f32([abs(x) for x in struct.unpack("<%df" % (len(r) // 4), r)]))
                                            for n, d, s, r in mlp_tensors(sizes, "adam.v.", 0.2)]
write("checkpoint", "mlpkit-adam.safetensors", safetensors(mlp_tensors(sizes) + adam, full_meta))
write("checkpoint", "mlpkit-mse.safetensors",
      safetensors(mlp_tensors([1, 1]), {"format": "mlpkit", "layers": "1,1", "activation": "relu", "loss": "mse"}))
# a converted PyTorch state dict: no metadata, tensors in sorted key order, unpadded header
pt = mlp_tensors([3, 4, 2])
write("checkpoint", "pytorch.safetensors", safetensors(sorted(pt, key=lambda t: t[0]), None, pad=False))
# a PyTorch nn.Sequential's own state dict (Linear, ReLU, Linear under a module named net), sorted
names = {"W1": "net.0.weight", "b1": "net.0.bias", "W2": "net.2.weight", "b2": "net.2.bias"}
sequential = [(names[n], d, s, r) for n, d, s, r in mlp_tensors([3, 4, 2])]
write("checkpoint", "sequential.safetensors", safetensors(sorted(sequential, key=lambda t: t[0]), None, pad=False))
# extra tensors MLPKit ignores, of another dtype
write("checkpoint", "extra.safetensors",
      safetensors(mlp_tensors([2, 1]) + [("step", "I64", [1], struct.pack("<q", 3)), ("scale", "F16", [2], b"\x00<\x00<")],
                  {"note": "unicode \u00e9 \\ \" /"}))

# --- .npy -------------------------------------------------------------------------------------

def npy(descr, shape, raw, version=(1, 0)):
    shape_text = "(%d,)" % shape[0] if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    pre = 10 if version == (1, 0) else 12
    d += " " * (-(pre + len(d) + 1) % 64) + "\n"
    length = struct.pack("<H", len(d)) if version == (1, 0) else struct.pack("<I", len(d))
    return b"\x93NUMPY" + bytes(version) + length + d.encode() + raw


write("numpy", "f4-2x3.npy", npy("<f4", [2, 3], f32([0, 1.5, -2, 3.25, 4, 1e-3])))
write("numpy", "f8-4.npy", npy("<f8", [4], struct.pack("<4d", 0.1, -2, 3e10, 7)))
write("numpy", "i4-2x2.npy", npy("<i4", [2, 2], struct.pack("<4i", 1, -2, 3, 2**31 - 1)))
write("numpy", "i8-3x1.npy", npy("<i8", [3, 1], struct.pack("<3q", 0, 1, 2)))
write("numpy", "u1-2x2x2.npy", npy("|u1", [2, 2, 2], bytes(range(8))))
write("numpy", "f4-v2.npy", npy("<f4", [1, 2], f32([5, 6]), version=(2, 0)))
write("numpy", "f4-v3.npy", npy("<f4", [2], f32([7, 8]), version=(3, 0)))

# --- CSV (header-*: read with a header row, plain-*: without) --------------------------------------------------------------------------------------

write("csv", "header-basic.csv", "a,b,c\n1,2,3\n4.5,-6e-3,7\n")
write("csv", "plain-basic.csv", "1,2\n3,4")
write("csv", "header-quoted-crlf.csv", '\ufeff"x", "y ""q""",label\r\n"1.5", 2 ,0\r\n\r\n-.5,+3E+2,1\r\n')
write("csv", "plain-blank-lines.csv", "\n  \n0.1,0.2,0.3,0.4\n\n1e-38,3.4e38,-0,16777217\n")
write("csv", "plain-long-digits.csv", "0.30000000000000004441,123456789012345678901234,1e-45\n")
# the last column holds text labels (decodeTable's class names), one quoted with a comma
write("csv", "header-text-labels.csv", 'x,y,species\n1,2,setosa\n3,4," versi, ""color"""\n5,6,setosa\n')
# feature columns of text (decodeTable's categories, one-hot) and an id column, names quoted
write("csv", "header-categories.csv",
      'id,rooms,city,"kind, of",price\nr1,3,Oslo,flat,10.5\nr2,1,"Mo, i Rana",house,7\nr3,2,Bergen,flat,8.25\nr4,4,Oslo,"a ""b""",12\n')
# missing values (read with --fill-missing): a numeric column, a column of categories that starts empty
write("csv", "header-missing.csv", 'a,cabin,b,y\n,,1,0\nNA,C85,?,1\n2.5,"B, 2",3,1\n "n/a" ,NULL,NaN,0\n')
# other separators (CSVSeparator): semicolons with decimal commas and a quoted semicolon, tabs with a
# comma in a text cell, runs of spaces as numpy.savetxt writes them, vertical bars
write("csv", "header-semicolons.csv", '\ufeff"a";"b c";kind;y\r\n1,5;-2,25e-3;"x;y";0\r\n;3;Oslo, west;1\r\n')
write("csv", "header-tabs.csv", 'a\tkind\ty\n1.5\tMo, i Rana\t0\n\t"q ""t"""\t1\n')
write("csv", "plain-spaces.csv", '  1.000000000000000000e+00 -2.5e-01\n\n3   4\n')
write("csv", "header-bars.csv", 'a|b|y\n1|2|0\n3|-4.5e1|1\n')

# --- IDX --------------------------------------------------------------------------------------

write("idx", "labels-idx1-ubyte", struct.pack(">II", 0x801, 5) + bytes([0, 1, 2, 9, 255]))
write("idx", "images-idx3-ubyte", struct.pack(">IIII", 0x803, 2, 3, 3) + bytes(range(0, 252, 14)))

# --- archives: gzip files and zip (.npz) archives ---------------------------------------------

import gzip  # noqa: E402
import io  # noqa: E402
import zipfile  # noqa: E402
import zlib  # noqa: E402


def npz(arrays, method):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in arrays:
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buffer.getvalue()


x_npy = npy("<f4", [2, 3], f32([0, 1.5, -2, 3.25, 4, 1e-3]))
y_npy = npy("<i8", [2], struct.pack("<2q", 0, 1))
write("archive", "x.npy.gz", gzip.compress(x_npy, 9, mtime=0))
write("archive", "plain.csv.gz", gzip.compress(b"1,2\n3,4\n5,6\n", 6, mtime=0))
raw = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_FIXED)
write("archive", "stored-fixed.gz", gzip.compress(b"0,1\n", 0, mtime=0)
      + b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03" + raw.compress(b"2,3\n") + raw.flush()
      + struct.pack("<II", zlib.crc32(b"2,3\n"), 4))
write("archive", "idx.gz", gzip.compress(struct.pack(">II", 0x801, 3) + bytes([1, 2, 3]), 9, mtime=0))
write("archive", "stored.npz", npz([("x.npy", x_npy), ("y.npy", y_npy)], zipfile.ZIP_STORED))
write("archive", "deflated.npz", npz([("x.npy", x_npy), ("y.npy", y_npy)], zipfile.ZIP_DEFLATED))
write("archive", "single.npz", npz([("arr_0.npy", x_npy)], zipfile.ZIP_DEFLATED))
