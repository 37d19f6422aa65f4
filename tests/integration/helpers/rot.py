#!/usr/bin/python3
"""rot.py - silent corruption ("bit rot") of RAID members, for the self-healing tests.

  rot.py hit IMG SECTOR BYTE NBYTES UNIT [--integrity]
      writes NBYTES random bytes into the file IMG from byte BYTE of logical sector SECTOR,
      as `dd conv=notrunc` would.  The logical device is IMG itself for a plain file; with
      --integrity it is the dm-integrity device IMG holds, and the range must lie in one
      interleave area (contiguous in the file; exit 3 otherwise).  Prints how many
      UNIT-sector units (aligned on the logical device) really changed.
  rot.py plan SEED COUNT LO HI MEMBERS NBYTES [GAP]
      COUNT damages of NBYTES at random places: lines "MEMBER SECTOR BYTE", SECTOR in
      [LO, HI) (member data-area sectors).  The ranges are GAP sectors (default 16) apart
      whatever their members, so no two members are ever damaged in the same place: below
      the redundancy limit of every level.
  rot.py roles LEVEL LAYOUT MEMBERS STRIPE
      "data: M M ... p: M q: M" for one stripe of md's RAID4/5/6 layouts (mdlayout.py).
  rot.py csumlog IMG LOG_SECTOR DATA_SECTOR DEV_SECTORS UUIDHEX
      checks blkstack's checksum log (docs/raid.md) on member file IMG against its data:
      header fields and CRC, then every entry that is not 0 must be the CRC-32C of its 4 KiB
      block (recorded as 1 where it is 0).  Prints "entries N known K"; exit 1 on any difference.

The checksum arithmetic is written here from the documented format, not from the C code.
"""
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def integrity_image(path):
    from integrity_check import Image  # noqa: E402 (the independent dm-integrity reader)

    return Image(path)


def cmd_hit(args):
    img, sector, byte, nbytes, unit = args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4])
    integ = "--integrity" in args
    first = sector + byte // 512
    last = sector + (byte + nbytes - 1) // 512
    if integ:
        im = integrity_image(img)
        base = im.locate(first)[0]
        if im.locate(last)[0] != base + (last - first) * 512:
            sys.exit(3)  # crosses an interleave area
        off = base + byte % 512
        lbase = first * 512 + byte % 512  # logical byte of OFF
    else:
        off = sector * 512 + byte
        lbase = off
    with open(img, "r+b") as f:
        f.seek(off)
        before = f.read(nbytes)
        after = os.urandom(nbytes)
        f.seek(off)
        f.write(after)
    changed = set()
    for i in range(nbytes):
        if before[i] != after[i]:
            changed.add((lbase + i) // (512 * unit))
    print(len(changed))


def cmd_plan(args):
    seed, count, lo, hi, members, nbytes = (int(a) for a in args[:6])
    gap = int(args[6]) if len(args) > 6 else 16
    rnd = random.Random(seed)
    span = (nbytes + 511) // 512 + 1
    taken = []
    out = []
    while len(out) < count:
        s = rnd.randrange(lo, hi - span)
        if any(s < t1 + gap and t0 < s + span + gap for t0, t1 in taken):
            continue
        taken.append((s, s + span))
        out.append("%d %d %d" % (rnd.randrange(members), s, rnd.randrange(512)))
    print("\n".join(out))


def cmd_roles(args):
    from mdlayout import stripe_roles  # noqa: E402

    level, layout, n, stripe = (int(a) for a in args[:4])
    data, p, q, _ = stripe_roles(level, layout, n, stripe)
    print("data: %s p: %d q: %s" % (" ".join(map(str, data)), p, "-" if q is None else q))


# ---- CRC-32C (Castagnoli, reflected 0x82f63b78) without its initial value and final xor,
# as ISA-L's crc32_iscsi(.., c): the log's header uses c = 0, its blocks the standard CRC-32C
# (c = ~0, then ~) with 0 recorded as 1. ----
def _tables():
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t0.append(c)
    ts = [t0]
    for _ in range(7):
        prev = ts[-1]
        ts.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return ts


T = _tables()


def crc32c(data, c=0):
    t0, t1, t2, t3, t4, t5, t6, t7 = T
    n8 = len(data) // 8 * 8
    for lo, hi in struct.iter_unpack("<II", data[:n8]):
        c ^= lo
        c = (t7[c & 0xFF] ^ t6[(c >> 8) & 0xFF] ^ t5[(c >> 16) & 0xFF] ^ t4[c >> 24] ^
             t3[hi & 0xFF] ^ t2[(hi >> 8) & 0xFF] ^ t1[(hi >> 16) & 0xFF] ^ t0[hi >> 24])
    for b in data[n8:]:
        c = t0[(c ^ b) & 0xFF] ^ (c >> 8)
    return c


def cmd_csumlog(args):
    img, log_sector, data_sector, dev_sectors, uuid = (args[0], int(args[1]), int(args[2]),
                                                       int(args[3]), bytes.fromhex(args[4]))
    nblocks = (dev_sectors + 7) // 8
    with open(img, "rb") as f:
        f.seek(log_sector * 512)
        log = f.read(512 + 4 * nblocks)
        f.seek(data_sector * 512)
        data = f.read(nblocks * 4096)
    magic, version, uu, bs, pad, entries, crc = struct.unpack_from("<4sI16sIIQI", log, 0)
    bad = []
    if magic != b"BSCS" or version != 2 or bs != 8 or pad != 0:
        bad.append("header: magic %r version %d block %d pad %d" % (magic, version, bs, pad))
    if uu != uuid:
        bad.append("header: uuid %s, not %s" % (uu.hex(), uuid.hex()))
    if entries != nblocks:
        bad.append("header: %d entries, not %d" % (entries, nblocks))
    if crc != crc32c(log[:40]):
        bad.append("header: crc %08x, not %08x" % (crc, crc32c(log[:40])))
    known = 0
    for b in range(nblocks):
        want = struct.unpack_from("<I", log, 512 + 4 * b)[0]
        if not want:
            continue
        known += 1
        got = crc32c(data[b * 4096:(b + 1) * 4096], 0xFFFFFFFF) ^ 0xFFFFFFFF or 1
        if got != want and len(bad) < 10:
            bad.append("block %d (sector %d): log %08x, data %08x" % (b, b * 8, want, got))
    if bad:
        print("\n".join(bad))
        sys.exit(1)
    print("entries %d known %d" % (nblocks, known))


def main():
    cmds = {"hit": cmd_hit, "plan": cmd_plan, "roles": cmd_roles, "csumlog": cmd_csumlog}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__)
        sys.exit(2)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
