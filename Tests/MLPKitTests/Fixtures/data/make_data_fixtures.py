#!/usr/bin/env python3
"""Writes the tiny .npy fixtures used by Tests/MLPKitTests/Data/ReaderTests.swift.

Run from anywhere: python3 make_data_fixtures.py  (NumPy >= 1.17). The files land next to this script.
The values are fixed literals that ReaderTests.swift repeats, so NumPy is the independent reference.
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, array, version=None):
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=False)


F32 = [[1.5, -2.25, 0.1], [3.0e-3, -0.0, 16777216.0]]
F64 = [[0.1, -2.5, 1.0e-30], [123456.789, 3.4e38, -7.0]]

save("f4_2d.npy", np.array(F32, dtype="<f4"))
save("f8_2d.npy", np.array(F64, dtype="<f8"))
save("i4_1d.npy", np.array([0, -1, 2, 2147483647, -2147483648], dtype="<i4"))
save("i8_2d.npy", np.array([[0, 9], [-3, 16777216], [7, -9007199254740992]], dtype="<i8"))
save("u1_3d.npy", np.arange(24, dtype="u1").reshape(2, 3, 4) * 10)
save("f4_integral.npy", np.array([[1, 2], [-3, 4]], dtype="<f4"))
save("f4_v2.npy", np.array(F32, dtype="<f4"), version=(2, 0))
save("f4_v3.npy", np.array(F32, dtype="<f4"), version=(3, 0))
save("f4_fortran.npy", np.asfortranarray(np.array(F32, dtype="<f4")))
save("f4_bigendian.npy", np.array(F32, dtype=">f4"))
save("f2_2d.npy", np.array([[1.0, 2.0], [0.5, -4.0]], dtype="<f2"))
save("f4_scalar.npy", np.array(1.5, dtype="<f4"))
save("f4_nan.npy", np.array([[1.0, np.nan], [2.0, 3.0]], dtype="<f4"))
