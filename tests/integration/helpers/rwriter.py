#!/usr/bin/python3
"""rwriter.py - concurrent pattern writers over NBD, and a checker for what they leave.

  rwriter.py write SOCK NAME WID NWRITERS SIZE SECONDS STATE
      Writer WID of NWRITERS writes for SECONDS into export NAME (SIZE bytes), pipelined
      (up to 8 requests in flight), with a flush after every 16 acknowledged writes and
      FUA on one write in four.  The device is cut into 64 KiB regions dealt round-robin
      to the writers, so neighbouring blocks belong to different writers; each write
      covers 1 to 16 whole 4 KiB blocks inside one of the writer's regions, and never
      overlaps a write of its own still in flight.  The last region is left to the
      caller (probe writes), neither written nor checked.  At the end STATE gets, as JSON, the
      sequence number of the last acknowledged write of every block the writer touched.
      Any failed request is fatal.

  rwriter.py verify SOCK NAME SIZE STATE...
      Reads the whole device and checks every 4 KiB block: untouched blocks are zero; the
      others hold one intact pattern (header and fill agree: no torn block), written by the
      block's owner, with exactly the sequence number of its last acknowledged write.

A block's pattern: magic, writer id, sequence number, block number (32 bytes), then a fill
derived from those by SHA-256.
"""

import hashlib
import json
import random
import struct
import sys
import time

import nbd

BLOCK = 4096
REGION = 16  # blocks
MAGIC = 0x424C4B5354524E21  # "BLKSTRN!"
DEPTH = 8


def pattern(wid, seq, block):
    head = struct.pack("<QQQQ", MAGIC, wid, seq, block)
    fill = hashlib.sha256(head).digest() * (BLOCK // 32)
    return head + fill[: BLOCK - len(head)]


def connect(sock, name):
    h = nbd.NBD()
    h.set_export_name(name)
    h.connect_unix(sock)
    return h


def write(sock, name, wid, nw, size, seconds, state):
    h = connect(sock, name)
    assert h.get_size() == size, "size %d, expected %d" % (h.get_size(), size)
    rng = random.Random(wid * 7919 + 1)
    regions = [r for r in range(size // BLOCK // REGION - 1) if r % nw == wid]
    last = {}  # block -> seq of the last acknowledged write
    busy = set()  # blocks of writes in flight
    errors = []
    seq = 0
    acked = 0
    flushes = 0
    since_flush = 0

    def done(blocks, s):
        def cb(err):
            nonlocal acked, since_flush
            if err:
                errors.append("write %d: error %d" % (s, err))
            else:
                for b in blocks:
                    last[b] = s
                acked += 1
                since_flush += 1
            busy.difference_update(blocks)
            return 1
        return cb

    def flushed(err):
        nonlocal flushes
        if err:
            errors.append("flush: error %d" % err)
        flushes += 1
        return 1

    end = time.monotonic() + seconds
    while time.monotonic() < end and not errors:
        while h.aio_in_flight() < DEPTH:
            r = rng.choice(regions)
            first = rng.randrange(REGION)
            n = rng.randint(1, REGION - first)
            blocks = range(r * REGION + first, r * REGION + first + n)
            if busy.intersection(blocks):
                break
            seq += 1
            buf = b"".join(pattern(wid, seq, b) for b in blocks)
            flags = nbd.CMD_FLAG_FUA if seq % 4 == 0 else 0
            busy.update(blocks)
            h.aio_pwrite(buf, blocks[0] * BLOCK, completion=done(list(blocks), seq), flags=flags)
        if since_flush >= 16:
            since_flush = 0
            h.aio_flush(completion=flushed)
        h.poll(-1)
    while h.aio_in_flight():
        h.poll(-1)
    if errors:
        sys.exit("writer %d: %s" % (wid, errors[0]))
    h.flush()
    h.shutdown()
    with open(state, "w") as f:
        json.dump({"wid": wid, "nw": nw, "acked": acked, "flushes": flushes,
                   "last": {str(b): s for b, s in last.items()}}, f)
    print("writer %d: %d writes acknowledged, %d flushes" % (wid, acked, flushes))


def verify(sock, name, size, states):
    want = {}
    for p in states:
        st = json.load(open(p))
        for b, s in st["last"].items():
            want[int(b)] = (st["wid"], s)
        nw = st["nw"]
    h = connect(sock, name)
    zero = bytes(BLOCK)
    bad = []
    step = 1 << 20
    for off in range(0, size, step):
        data = h.pread(step, off)
        for i in range(0, step, BLOCK):
            b = (off + i) // BLOCK
            if b >= size // BLOCK - REGION:
                continue  # the caller's
            blk = data[i:i + BLOCK]
            if b not in want:
                if blk != zero:
                    bad.append("block %d: never written, but not zero" % b)
                continue
            magic, wid, seq, num = struct.unpack("<QQQQ", blk[:32])
            if magic != MAGIC or blk != pattern(wid, seq, num):
                bad.append("block %d: torn or foreign data (header %x %d %d %d)" %
                           (b, magic, wid, seq, num))
            elif num != b:
                bad.append("block %d: holds block %d's data" % (b, num))
            elif (wid, seq) != want[b]:
                bad.append("block %d: writer %d seq %d, expected writer %d seq %d "
                           "(the last acknowledged write)" % ((b, wid, seq) + want[b]))
            elif wid != (b // REGION) % nw:
                bad.append("block %d: written by writer %d, not its owner" % (b, wid))
    h.shutdown()
    if bad:
        print("\n".join(bad[:20]))
        sys.exit("%d bad blocks of %d" % (len(bad), size // BLOCK))
    print("verified %d blocks (%d written)" % (size // BLOCK - REGION, len(want)))


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "write":
        write(a[2], a[3], int(a[4]), int(a[5]), int(a[6]), float(a[7]), a[8])
    elif a[1] == "verify":
        verify(a[2], a[3], int(a[4]), a[5:])
    else:
        sys.exit(__doc__)
