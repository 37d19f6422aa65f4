#!/usr/bin/python3
"""mdlayout.py - an independent model of where Linux md places data, for tests.

Written from the md documentation and kernel algorithm descriptions as a separate
implementation (per-stripe tables rather than the engine's per-chunk arithmetic), to check
blkstack's member files byte for byte.

  mdlayout.py check LEVEL LAYOUT CHUNK_SECTORS DATA_FILE MEMBER... [--offset SECTORS]
      rebuilds the array contents from the member files (in role order; "-" for a missing
      member) and compares them with DATA_FILE; verifies P (and Q for RAID6) of every
      stripe when all members are present.  Exit 0 when everything matches.
LEVEL: 0 1 4 5 6 10.  LAYOUT: md's number (RAID10: near|far|offset:COPIES[:farsets]).
"""
import sys

SECTOR = 512

# ---- GF(2^8), polynomial 0x11d, generator 2 (the RAID6 field) ----
EXP = [0] * 512
LOG = [0] * 256
x = 1
for i in range(255):
    EXP[i] = x
    LOG[x] = i
    x <<= 1
    if x & 0x100:
        x ^= 0x11D
for i in range(255, 512):
    EXP[i] = EXP[i - 255]


def gmul(a, b):
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def mul_block(c, block):
    if c == 1:
        return block
    table = bytes(gmul(c, v) for v in range(256))
    return block.translate(table)


def xor(a, b):
    return bytes(i ^ j for i, j in zip(a, b))


# ---- RAID4/5/6: one stripe described as (data members in logical order, P, Q, Q exps) ----
def stripe_roles(level, layout, n, stripe):
    """Returns (data_members, p, q, q_exponents) for stripe number STRIPE of N members."""
    if level == 4:
        return list(range(n - 1)), n - 1, None, None
    if level == 5:
        dd = n - 1
        r = stripe % n
        if layout == 0:   # left-asymmetric: P walks right to left, data fills around it
            p = dd - r
            data = [d for d in range(n) if d != p]
        elif layout == 1:  # right-asymmetric
            p = r
            data = [d for d in range(n) if d != p]
        elif layout == 2:  # left-symmetric: data starts right after P, wrapping
            p = dd - r
            data = [(p + 1 + k) % n for k in range(dd)]
        elif layout == 3:  # right-symmetric
            p = r
            data = [(p + 1 + k) % n for k in range(dd)]
        elif layout == 4:  # parity first
            p = 0
            data = list(range(1, n))
        elif layout == 5:  # parity last
            p = n - 1
            data = list(range(n - 1))
        else:
            raise ValueError("layout")
        return data, p, None, None
    # RAID6
    dd = n - 2
    r = stripe % n
    ddf = False
    if layout in (0, 1, 8, 9):
        if layout == 0:
            p = n - 1 - r
        elif layout == 9:  # ddf N restart
            p = n - 1 - ((stripe + 1) % n)
        else:
            p = r
        if p == n - 1:
            q = 0
            data = list(range(1, n - 1))
        else:
            q = p + 1
            data = [d for d in range(n) if d not in (p, q)]
        ddf = layout in (8, 9)
    elif layout in (2, 3):
        p = n - 1 - r if layout == 2 else r
        q = (p + 1) % n
        data = [(p + 2 + k) % n for k in range(dd)]
    elif layout == 10:  # ddf N continue
        p = n - 1 - r
        q = (p + n - 1) % n
        data = [(p + 1 + k) % n for k in range(dd)]
        ddf = True
    elif layout == 4:
        p, q = 0, 1
        data = list(range(2, n))
    elif layout == 5:
        p, q = n - 2, n - 1
        data = list(range(n - 2))
    elif 16 <= layout <= 20:  # RAID5 layout over n-1 members, Q last
        q = n - 1
        m = n - 1
        sub = {16: 0, 17: 1, 18: 2, 19: 3, 20: 4}[layout]
        data, p, _, _ = stripe_roles(5, sub, m, stripe)
    else:
        raise ValueError("layout")
    if ddf:
        exps = list(data)  # DDF: coefficient by member index
    else:
        order = [(q + 1 + i) % n for i in range(n)]
        slots = [d for d in order if d not in (p, q)]
        exps = [slots.index(d) for d in data]
    return data, p, q, exps


def read_member(members, idx, sector, count, offset):
    f = members[idx]
    if f is None:
        return None
    f.seek((offset + sector) * SECTOR)
    return f.read(count * SECTOR)


def check_parity(level, layout, chunk, members, offset, stripes):
    n = len(members)
    bad = 0
    for s in range(stripes):
        data, p, q, exps = stripe_roles(level, layout, n, s)
        blocks = [read_member(members, d, s * chunk, chunk, offset) for d in data]
        pp = bytes(len(blocks[0]))
        for b in blocks:
            pp = xor(pp, b)
        if pp != read_member(members, p, s * chunk, chunk, offset):
            print("stripe %d: P mismatch" % s)
            bad += 1
        if q is not None:
            qq = bytes(len(blocks[0]))
            for b, e in zip(blocks, exps):
                qq = xor(qq, mul_block(EXP[e % 255], b))
            if qq != read_member(members, q, s * chunk, chunk, offset):
                print("stripe %d: Q mismatch" % s)
                bad += 1
    return bad


def rebuild_parity_array(level, layout, chunk, members, offset, size):
    n = len(members)
    dd = n - (2 if level == 6 else 1)
    out = bytearray()
    s = 0
    while len(out) < size:
        data, _, _, _ = stripe_roles(level, layout, n, s)
        for d in data:
            blk = read_member(members, d, s * chunk, chunk, offset)
            if blk is None:
                return None  # the model does not reconstruct; members must be present
            out += blk
        s += 1
    return bytes(out[:size]), s


def raid10_copies(layout_spec, n, chunk, dev_sectors, a):
    """md raid10: array sector -> [(member, member sector)] for near/far/offset."""
    kind, copies, *rest = layout_spec.split(":")
    copies = int(copies)
    farsets = bool(rest and rest[0] == "farsets")
    near = copies if kind == "near" else 1
    far = 1 if kind == "near" else copies
    offset = kind == "offset"
    chunk_no, in_chunk = divmod(a, chunk)
    fss = n // far if farsets else n
    # per-device chunk count, as md sizes it
    chunks = dev_sectors // chunk
    arr = chunks // far * n // near
    per_dev = (arr * copies + n - 1) // n
    stride = chunk if offset else per_dev // far * chunk
    chunk_no *= near
    stripe, dev = divmod(chunk_no, n)
    if offset:
        stripe *= far
    sector = in_chunk + stripe * chunk
    locs = []
    last_start = (n // fss - 1) * fss
    last_size = fss + n % fss
    for _ in range(near):
        d, s2 = dev, sector
        locs.append((d, s2))
        for _f in range(1, far):
            setno = d // fss
            d += near
            if n % fss and d > last_start:
                d = (d - last_start) % last_size + last_start
            else:
                d = d % fss + fss * setno
            s2 += stride
            locs.append((d, s2))
        dev += 1
        if dev >= n:
            dev = 0
            sector += chunk
    return locs


def main():
    args = sys.argv[1:]
    offset = 0
    dev_sectors = None
    if "--offset" in args:
        i = args.index("--offset")
        offset = int(args[i + 1])
        del args[i:i + 2]
    if "--dev-sectors" in args:
        i = args.index("--dev-sectors")
        dev_sectors = int(args[i + 1])
        del args[i:i + 2]
    if len(args) < 6 or args[0] != "check":
        print(__doc__)
        sys.exit(2)
    level = int(args[1])
    layout = args[2]
    chunk = int(args[3])
    want = open(args[4], "rb").read()
    members = [None if p == "-" else open(p, "rb") for p in args[5:]]
    n = len(members)
    bad = 0
    if level in (4, 5, 6):
        got, stripes = rebuild_parity_array(level, int(layout), chunk, members, offset, len(want))
        if got != want:
            print("array contents differ from the data written")
            bad += 1
        if all(m is not None for m in members):
            bad += check_parity(level, int(layout), chunk, members, offset, stripes)
    elif level == 1:
        for i, m in enumerate(members):
            if m is None:
                continue
            if read_member(members, i, 0, len(want) // SECTOR, offset) != want:
                print("mirror %d differs" % i)
                bad += 1
    elif level == 0:
        out = bytearray()
        c = 0
        while len(out) < len(want):
            out += read_member(members, c % n, (c // n) * chunk, chunk, offset)
            c += 1
        if bytes(out[:len(want)]) != want:
            print("RAID0 contents differ")
            bad += 1
    elif level == 10:
        import os
        if dev_sectors is None:
            dev_sectors = os.fstat(members[0].fileno()).st_size // SECTOR - offset
        for a in range(0, len(want) // SECTOR, chunk):
            ref = want[a * SECTOR:(a + chunk) * SECTOR]
            for d, s in raid10_copies(layout, n, chunk, dev_sectors, a):
                if members[d] is None:
                    continue
                if read_member(members, d, s, chunk, offset) != ref:
                    print("RAID10 chunk at %d: copy on member %d sector %d differs" % (a, d, s))
                    bad += 1
    if bad:
        sys.exit(1)
    print("layout check ok: level %d layout %s, %d members" % (level, layout, n))


if __name__ == "__main__":
    main()
