#!/usr/bin/env python3
"""The Apache DataSketches side of tests/hll_datasketches.rs: the reference implementation
(PyPI `datasketches`) reads shardfold's HLL images and writes its own.

Items: `int:A:B` are the integers A..B (DataSketches `update(int)`, a 64-bit integer);
`str:A:B` are the strings "item-A" .. "item-(B-1)" (`update(str)`, UTF-8 bytes).

Commands (images are files of raw bytes):
  check IMAGE EXACT           deserialize IMAGE, print "estimate lower upper" (3 std devs);
                              exit 1 unless lower <= EXACT <= upper
  build LG_K ITEMS OUT [updatable] [hll4|hll6]
                              a native sketch of ITEMS (HLL_8 unless hll4/hll6), serialized
                              (compact unless `updatable`)
  union LG_K IMAGE ITEMS OUT  deserialize IMAGE, union it with a native sketch of ITEMS,
                              write the HLL_8 result
  singles LG_K ITEMS          one native sketch per item: print one hex image per line
"""

import sys

import datasketches as ds


def items(spec):
    kind, a, b = spec.split(":")
    rng = range(int(a), int(b))
    if kind == "int":
        return list(rng)
    if kind == "str":
        return [f"item-{i}" for i in rng]
    raise SystemExit(f"unknown item kind {kind}")


def native(lg_k, spec, tgt=ds.tgt_hll_type.HLL_8):
    sk = ds.hll_sketch(lg_k, tgt)
    for x in items(spec):
        sk.update(x)
    return sk


def main(argv):
    cmd = argv[1]
    if cmd == "check":
        with open(argv[2], "rb") as f:
            sk = ds.hll_sketch.deserialize(f.read())
        exact = float(argv[3])
        est, lo, hi = sk.get_estimate(), sk.get_lower_bound(3), sk.get_upper_bound(3)
        print(f"{est} {lo} {hi}")
        return 0 if lo <= exact <= hi else 1
    if cmd == "build":
        opts = argv[5:]
        tgt = ds.tgt_hll_type.HLL_8
        if "hll4" in opts:
            tgt = ds.tgt_hll_type.HLL_4
        if "hll6" in opts:
            tgt = ds.tgt_hll_type.HLL_6
        sk = native(int(argv[2]), argv[3], tgt)
        updatable = "updatable" in opts
        with open(argv[4], "wb") as f:
            f.write(sk.serialize_updatable() if updatable else sk.serialize_compact())
        return 0
    if cmd == "union":
        lg_k = int(argv[2])
        with open(argv[3], "rb") as f:
            theirs = ds.hll_sketch.deserialize(f.read())
        u = ds.hll_union(lg_k)
        u.update(theirs)
        u.update(native(lg_k, argv[4]))
        with open(argv[5], "wb") as f:
            f.write(u.get_result(ds.tgt_hll_type.HLL_8).serialize_compact())
        return 0
    if cmd == "singles":
        lg_k = int(argv[2])
        for x in items(argv[3]):
            sk = ds.hll_sketch(lg_k, ds.tgt_hll_type.HLL_8)
            sk.update(x)
            print(sk.serialize_compact().hex())
        return 0
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
