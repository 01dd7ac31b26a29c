#!/usr/bin/env python3
"""Sizes of two wasm modules and what makes up their difference.

Usage: wasm_size.py [--top N] BASE.wasm WITH.wasm

Prints each module's raw and gzipped (-9) size and the differences, then the
largest contributors to the difference: the size of each function's body in
the code section, named by the module's name section, summed by crate (the
first path segment of the demangled name; for `<T as Trait>::f`, T's crate)
and listed by function. Functions are matched across the modules by name with
the hash suffix (`::h0123...`) and the linker's copy number (`.3340`)
removed; data and custom sections are given as
totals. Only the standard library: CI runs it as is.
"""
import gzip
import re
import sys
from collections import defaultdict


def leb(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def parse(path):
    """Returns (bytes, {section: size}, [(name, body size)])."""
    buf = open(path, "rb").read()
    assert buf[:4] == b"\0asm", f"{path}: not a wasm module"
    pos = 8
    sections = defaultdict(int)
    imported_funcs = 0
    bodies = []
    names = {}
    ids = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory",
           6: "global", 7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount"}
    while pos < len(buf):
        sid = buf[pos]
        size, body = leb(buf, pos + 1)
        end = body + size
        label = ids.get(sid, str(sid))
        if sid == 0:
            nlen, p = leb(buf, body)
            cname = buf[p:p + nlen].decode("utf-8", "replace")
            label = f"custom:{cname}"
            if cname == "name":
                p += nlen
                while p < end:
                    sub = buf[p]
                    sublen, q = leb(buf, p + 1)
                    if sub == 1:
                        count, r = leb(buf, q)
                        for _ in range(count):
                            idx, r = leb(buf, r)
                            ln, r = leb(buf, r)
                            names[idx] = buf[r:r + ln].decode("utf-8", "replace")
                            r += ln
                    p = q + sublen
        elif sid == 2:
            count, p = leb(buf, body)
            for _ in range(count):
                for _ in range(2):  # module, field
                    ln, p = leb(buf, p)
                    p += ln
                kind = buf[p]
                p += 1
                if kind == 0:
                    _, p = leb(buf, p)
                    imported_funcs += 1
                elif kind == 1:  # table: reftype, limits
                    p += 1
                    flags = buf[p]
                    _, p = leb(buf, p + 1)
                    if flags & 1:
                        _, p = leb(buf, p)
                elif kind == 2:  # memory: limits
                    flags = buf[p]
                    _, p = leb(buf, p + 1)
                    if flags & 1:
                        _, p = leb(buf, p)
                elif kind == 3:  # global: valtype, mut
                    p += 2
                else:  # tag
                    p += 1
                    _, p = leb(buf, p)
        elif sid == 10:
            count, p = leb(buf, body)
            for i in range(count):
                fsize, q = leb(buf, p)
                bodies.append((imported_funcs + i, q + fsize - p))
                p = q + fsize
        sections[label] += end - pos
        pos = end
    funcs = [(names.get(idx, f"func[{idx}]"), size) for idx, size in bodies]
    return buf, dict(sections), funcs


HASH = re.compile(r"::h[0-9a-f]{16}$")
# The linker numbers the copies of a function it could not merge (`.3340`),
# differently in each build: the same function must match across the two.
COPY = re.compile(r"\.\d+$")
# v0 demangling names each crate with its disambiguator (`core[92ce...]`),
# which differs between the two builds for the probe crate itself.
DISAMBIGUATOR = re.compile(r"\[[0-9a-f]+\]")
PROBE = re.compile(r"\bwasm_size_(plain|schema)\b")


def normal(name):
    return PROBE.sub("probe", DISAMBIGUATOR.sub("", HASH.sub("", COPY.sub("", name))))


def crate_of(name):
    n = name
    while n.startswith("<"):
        n = n[1:]
    n = n.lstrip("&*[").replace("mut ", "").replace("dyn ", "")
    head = re.split(r"::|<|>|\]| |\[|\(", n, maxsplit=1)[0]
    return head or name[:30]


def kb(n):
    return f"{n / 1000:+.1f} KB" if n else "0"


def main():
    args = sys.argv[1:]
    top = 15
    if args[:1] == ["--top"]:
        top = int(args[1])
        args = args[2:]
    base_path, with_path = args
    base_buf, base_sec, base_funcs = parse(base_path)
    with_buf, with_sec, with_funcs = parse(with_path)

    def sizes(buf):
        return len(buf), len(gzip.compress(buf, 9))

    br, bg = sizes(base_buf)
    wr, wg = sizes(with_buf)
    print(f"{'':28}{'raw':>12}{'gzip -9':>12}")
    print(f"{'without durable-schema':28}{br:>12,}{bg:>12,}")
    print(f"{'with durable-schema':28}{wr:>12,}{wg:>12,}")
    print(f"{'difference':28}{wr - br:>+12,}{wg - bg:>+12,}")
    print(f"{'difference (KB)':28}{(wr - br) / 1000:>+11.1f}K{(wg - bg) / 1000:>+11.1f}K")
    # The name section (function names, for stack traces) is a third of the
    # file; what the engine compiles is the rest.
    bn, wn = base_sec.get("custom:name", 0), with_sec.get("custom:name", 0)
    print(f"{'difference without names':28}{(wr - wn) - (br - bn):>+12,}")

    print("\nsections (bytes): without -> with (difference)")
    for s in sorted(set(base_sec) | set(with_sec), key=lambda s: -(with_sec.get(s, 0) - base_sec.get(s, 0))):
        a, b = base_sec.get(s, 0), with_sec.get(s, 0)
        print(f"  {s:28}{a:>10,} -> {b:>10,}  ({b - a:+,})")

    def by(funcs, key):
        out = defaultdict(int)
        for name, size in funcs:
            out[key(name)] += size
        return out

    bc = by(base_funcs, lambda n: crate_of(normal(n)))
    wc = by(with_funcs, lambda n: crate_of(normal(n)))
    rows = sorted(((wc.get(c, 0) - bc.get(c, 0), c) for c in set(bc) | set(wc)), reverse=True)
    print(f"\nlargest contributors by crate (function bodies, bytes; {len(with_funcs)} functions with, {len(base_funcs)} without)")
    for d, c in rows[:top]:
        if d <= 0:
            break
        print(f"  {d:>+9,}  {c}  ({bc.get(c, 0):,} -> {wc.get(c, 0):,})")

    bf = by(base_funcs, normal)
    wf = by(with_funcs, normal)
    rows = sorted(((wf.get(f, 0) - bf.get(f, 0), f) for f in set(bf) | set(wf)), reverse=True)
    print("\nlargest contributors by function (body bytes, with minus without)")
    for d, f in rows[:top]:
        if d <= 0:
            break
        print(f"  {d:>+9,}  {f[:150]}")


if __name__ == "__main__":
    main()
