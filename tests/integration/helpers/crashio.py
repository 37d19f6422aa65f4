#!/usr/bin/python3
"""crashio.py - random writes with flushes against an NBD export, for crash tests.

  crashio.py write URI STATE SIZE SECONDS SEED   write until killed or SECONDS pass
  crashio.py verify URI STATE SIZE               check the device against STATE

CRASHIO_STRIPE=BYTES makes a quarter of the writes whole, aligned stripes of that size.

Every 512-byte sector written holds a self-describing pattern: the write id, the sector
number and a checksum-like fill derived from both, so any sector read back names the write
it came from and shows whether it is intact.  STATE is appended to as the writer runs:
    "W id offset length"   a write was issued
    "A id"                 that write was acknowledged
    "F seq"                a flush issued after every acknowledged write so far completed
The verifier replays STATE: a sector's content must come from the last write acknowledged
before a completed flush (or be zero if none), or from a write issued after that one (in
flight at the crash); never anything else, never a torn sector.

STATE runs on across crashes, so a flush after a restart also covers writes acknowledged
before the crash.  That is right for a killed process (what the kernel accepted survives)
but stricter than a power cut, where unflushed acknowledged writes may vanish.
"""

import hashlib
import os
import random
import struct
import sys
import time

import nbd

SECTOR = 512


def pattern(wid, sector):
    head = struct.pack("<QQ", wid, sector)
    fill = hashlib.sha256(head).digest()
    return head + (fill * 16)[: SECTOR - 16]


def payload(wid, off, length):
    return b"".join(pattern(wid, s) for s in range(off // SECTOR, (off + length) // SECTOR))


def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def do_write(uri, state, size, seconds, seed):
    rnd = random.Random(seed)
    h = connect(uri)
    log = open(state, "a", buffering=1)
    wid = int(time.time() * 1000) * 1000 + rnd.randrange(1000)  # unique across runs
    end = time.time() + seconds
    # requests aligned as the server asks (4 KiB for RAID with the checksum log)
    align = max(SECTOR, h.get_block_size(nbd.SIZE_MINIMUM))
    stripe = int(os.environ.get("CRASHIO_STRIPE", "0"))
    inflight = {}
    fseq = 0
    pending_flush = None
    acked_since_flush = False
    while time.time() < end:
        # keep up to 8 writes in flight, never overlapping each other: concurrent writes
        # to the same sectors may complete in either order, so "later" would mean nothing
        while len(inflight) < 8:
            length = max(align, rnd.choice([512, 4096, 4096, 16384, 65536, 131072]))
            off = rnd.randrange(0, (size - length) // align + 1) * align
            if stripe and rnd.random() < 0.25:
                # a whole stripe of a parity array (CRASHIO_STRIPE bytes)
                length = stripe
                off = rnd.randrange(0, size // stripe) * stripe
            if any(off < o + n and o < off + length for (_, _, o, n) in inflight.values()):
                continue
            wid += 1
            buf = nbd.Buffer.from_bytearray(bytearray(payload(wid, off, length)))
            log.write("W %d %d %d\n" % (wid, off, length))
            cookie = h.aio_pwrite(buf, off)
            inflight[cookie] = (wid, buf, off, length)
        h.poll(-1)
        for cookie in list(inflight):
            if h.aio_command_completed(cookie):
                wid_done = inflight.pop(cookie)[0]

                log.write("A %d\n" % wid_done)
                acked_since_flush = True
        if pending_flush is not None and h.aio_command_completed(pending_flush[0]):
            log.write("F %d\n" % pending_flush[1])
            pending_flush = None
        if pending_flush is None and acked_since_flush and rnd.random() < 0.2:
            # a flush covers every write acknowledged before it was issued
            fseq += 1
            log.write("f %d\n" % fseq)
            pending_flush = (h.aio_flush(), fseq)
            acked_since_flush = False
    h.shutdown()


def do_verify(uri, state, size):
    # durable[s] = last write id covering sector s acknowledged before a completed flush;
    # allowed[s] = durable plus every write issued later (possibly applied).
    # A flush covers the writes acknowledged before it was issued: those whose place in the
    # order of acknowledgements is below the count of acknowledgements at that moment.
    issued = {}
    order = []
    acked = {}  # write id -> its place in the order of acknowledgements
    flush_marks = {}  # flush seq -> (position in order, acknowledgements) when issued
    completed_flush_pos = -1
    durable_acks = 0
    pos = 0
    for line in open(state):
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "W":
            wid, off, length = int(parts[1]), int(parts[2]), int(parts[3])
            issued[wid] = (off, length, pos)
            order.append(wid)
            pos += 1
        elif parts[0] == "A":
            acked.setdefault(int(parts[1]), len(acked))
        elif parts[0] == "f":
            flush_marks[int(parts[1])] = (pos, len(acked))
        elif parts[0] == "F":
            fpos, durable_acks = flush_marks[int(parts[1])]
            completed_flush_pos = max(completed_flush_pos, fpos)
    nsec = size // SECTOR
    durable = [0] * nsec
    durable_pos = [-1] * nsec
    if completed_flush_pos >= 0:
        for wid in order:
            off, length, wpos = issued[wid]
            if wpos < completed_flush_pos and acked.get(wid, durable_acks) < durable_acks:
                for s in range(off // SECTOR, (off + length) // SECTOR):
                    if wpos > durable_pos[s]:
                        durable[s] = wid
                        durable_pos[s] = wpos
    h = connect(uri)
    data = bytearray()
    step = 4 << 20
    for o in range(0, size, step):
        data += h.pread(min(step, size - o), o)
    h.shutdown()
    bad = 0
    for s in range(nsec):
        sec = bytes(data[s * SECTOR:(s + 1) * SECTOR])
        if sec == bytes(SECTOR):
            wid = 0
        else:
            wid, snum = struct.unpack("<QQ", sec[:16])
            if snum != s or wid not in issued or sec != pattern(wid, s):
                print("sector %d: garbage (not any write's data; header says write %d sector %d)"
                      % (s, wid, snum))

                bad += 1
                continue
        if wid == durable[s]:
            continue
        if wid == 0 or issued[wid][2] < durable_pos[s]:
            print("sector %d: holds write %d, older than acknowledged-and-flushed write %d"
                  % (s, wid, durable[s]))
            bad += 1
            continue
        off, length, _ = issued[wid]
        if not (off // SECTOR <= s < (off + length) // SECTOR):
            print("sector %d: write %d does not cover it" % (s, wid))
            bad += 1
    if bad:
        print("verify: %d bad sectors" % bad)
        sys.exit(1)
    print("verify: ok, %d sectors, %d writes issued, %d acknowledged"
          % (nsec, len(issued), len(acked)))


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "write":
        do_write(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]))
    elif len(sys.argv) >= 2 and sys.argv[1] == "verify":
        do_verify(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
