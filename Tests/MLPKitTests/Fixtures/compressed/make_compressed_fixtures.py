#!/usr/bin/env python3
"""Writes the gzip and zip fixtures of CompressedDataTests with Python's zlib, gzip, zipfile and
NumPy (the independent implementations the Swift reader is checked against). Run from this folder:

    python3 make_compressed_fixtures.py

The originals are not stored: the tests rebuild them (`lines()` and `window()` below have Swift
twins in CompressedDataTests.swift) and compare the decompressed bytes with them.
"""
import gzip
import io
import struct
import zipfile
import zlib

import numpy as np


def lines():
    """200 CSV rows of three numbers, as text (the same in CompressedDataTests.lines)."""
    return "".join(f"{i},{(i * 37) % 101 / 8},{-i / 4}\n" for i in range(200)).encode()


def generator(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        yield state >> 56


def window():
    """Bytes that make DEFLATE use a distance near its 32 KiB limit, length-258 matches and
    overlapping copies (the same in CompressedDataTests.window)."""
    random = generator(7)
    head = bytes(next(random) for _ in range(1200))
    pattern = bytes((i * 7) % 97 for i in range(31000))
    tail = bytes(next(random) for _ in range(500))
    return head + pattern + head + b"\x2a" * 3000 + tail


def gzip_member(data, level=9, strategy=zlib.Z_DEFAULT_STRATEGY):
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31, 9, strategy)  # wbits 31: a gzip member
    return compressor.compress(data) + compressor.flush()


def gzip_with_every_header_field(data):
    """FEXTRA, FNAME, FCOMMENT and FHCRC, which Python's gzip module does not write."""
    header = bytes([0x1F, 0x8B, 8, 0x02 | 0x04 | 0x08 | 0x10]) + struct.pack("<I", 0) + bytes([2, 3])
    header += struct.pack("<H", 6) + b"AB\x02\x00xy" + b"lines.csv\x00" + b"a comment\x00"
    header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = raw.compress(data) + raw.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data))


def zip64(name, data):
    """A one-entry zip whose central directory gives its sizes and offset in a ZIP64 extra
    field and ends with ZIP64 end records, as archives over 4 GiB do."""
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = raw.compress(data) + raw.flush()
    crc = zlib.crc32(data)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0, crc, len(body), len(data), len(name), 0) + name
    extra = struct.pack("<HHQQQ", 1, 24, len(data), len(body), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                          len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra
    directory_offset = len(local) + len(body)
    end64_offset = directory_offset + len(central)
    end64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, len(central), directory_offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, end64_offset, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return local + body + central + end64 + locator + end


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def main():
    text = lines()
    files = {
        "lines.csv.gz": gzip.compress(text, 9),  # Python's gzip writes no name here: plain header
        "lines-stored.csv.gz": gzip_member(text, level=0),
        "lines-fixed.csv.gz": gzip_member(text, strategy=zlib.Z_FIXED),
        "lines-members.csv.gz": gzip_member(text[:3000], 1) + gzip_member(text[3000:], 9),
        "lines-header.csv.gz": gzip_with_every_header_field(text),
        "window.bin.gz": gzip_member(window()),
    }
    x = (np.arange(12, dtype=np.float32).reshape(4, 3) / 8)
    y = np.array([0, 1, 2, 1], dtype=np.int64)
    for name, save in (("arrays.npz", np.savez), ("arrays-compressed.npz", np.savez_compressed)):
        buffer = io.BytesIO()
        save(buffer, x=x, y=y)
        files[name] = buffer.getvalue()
    buffer = io.BytesIO()
    np.savez(buffer, x)
    files["single.npz"] = buffer.getvalue()  # one array, named arr_0
    files["zip64.npz"] = zip64(b"x.npy", npy(x))
    for name, content in files.items():
        with open(name, "wb") as out:
            out.write(content)
    # every fixture reads back with Python's own readers
    for name in files:
        if name.endswith(".gz"):
            assert gzip.decompress(files[name]) == (window() if name.startswith("window") else text), name
        else:
            with zipfile.ZipFile(name) as archive:
                for member in archive.namelist():
                    array = np.load(io.BytesIO(archive.read(member)))
                    assert array.shape in ((4, 3), (4,)), (name, member)


if __name__ == "__main__":
    main()
