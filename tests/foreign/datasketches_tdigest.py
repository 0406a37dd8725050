#!/usr/bin/env python3
"""The DataSketches side of tests/quantiles_datasketches.rs: the reference implementation
(PyPI `datasketches`, C++ tdigest behind it) reads, builds and merges t-digest images.

Commands (every report is one JSON object on stdout; files of values are raw f64 LE):

  read   IMAGE OUT              deserialize IMAGE (tdigest_double), report it, re-serialize to OUT
  build  VALUES K TYPE OUT      build a native sketch (TYPE double|float) of VALUES, serialize to OUT
  merge  VALUES K IMAGE         a native sketch of VALUES merged with the deserialized IMAGE

A report: k, empty, min, max, total_weight, quantiles [[rank, value]] at the ranks of RANKS
(every f64 of these as its IEEE bits, an integer), and the centroids as `to_string(True)`
prints them ([mean, weight], mean with 6 significant digits: the Python binding exposes no other
way to list them).
"""

import json
import struct
import sys
from array import array

import datasketches

RANKS = [0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0]


def bits(x):
    """An f64 as its IEEE bits (JSON floats are not always parsed back to the same double)."""
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def values(path):
    a = array("d")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    if sys.byteorder != "little":
        a.byteswap()
    return a


def centroids(sketch):
    """[[mean, weight]] from the text summary (`i: mean, weight` lines after `Centroids:`)."""
    out, inside = [], False
    for line in sketch.to_string(True).splitlines():
        if line.startswith("Centroids:"):
            inside = True
        elif line.startswith("Buffer:"):
            inside = False
        elif inside and ": " in line:
            mean, weight = line.split(": ", 1)[1].split(", ")
            out.append([float(mean), int(weight)])
    return out


def report(sketch):
    if sketch.is_empty():
        return {"k": sketch.k, "empty": True, "total_weight": 0}
    return {
        "k": sketch.k,
        "empty": False,
        "min": bits(sketch.get_min_value()),
        "max": bits(sketch.get_max_value()),
        "total_weight": sketch.get_total_weight(),
        "quantiles": [[bits(r), bits(sketch.get_quantile(r))] for r in RANKS],
        "centroids": centroids(sketch),
    }


def main(argv):
    cmd = argv[1]
    if cmd == "read":
        with open(argv[2], "rb") as f:
            sketch = datasketches.tdigest_double.deserialize(f.read())
        out = report(sketch)
        with open(argv[3], "wb") as f:
            f.write(sketch.serialize())
    elif cmd == "build":
        kind = {"double": datasketches.tdigest_double, "float": datasketches.tdigest_float}
        sketch = kind[argv[4]](int(argv[3]))
        for v in values(argv[2]):
            sketch.update(v)
        with open(argv[5], "wb") as f:
            f.write(sketch.serialize())
        out = report(sketch)
    elif cmd == "merge":
        sketch = datasketches.tdigest_double(int(argv[3]))
        for v in values(argv[2]):
            sketch.update(v)
        with open(argv[4], "rb") as f:
            sketch.merge(datasketches.tdigest_double.deserialize(f.read()))
        out = report(sketch)
    else:
        raise SystemExit(f"unknown command {cmd}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
