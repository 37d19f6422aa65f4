#!/bin/bash
# timeout: 120
# NBD commands through libnbd (nbdsh and its Python binding): TRIM, WRITE_ZEROES with and
# without NO_HOLE (and FAST_ZERO, which is not offered, refused), FUA writes, FLUSH, DF
# reads, simple and structured replies, pipelined requests answered out of order (a
# `delay` segment next to a fast one), requests past the end, read-only refusals, and
# several connections at once with multi-conn semantics.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
mkimg 8M f.img g.img
start_daemon
# nbdsh runs "python3 -m nbd": make that Debian's python, which has the libnbd binding.
nbdsh() { PATH=/usr/bin:$PATH command nbdsh "$@"; }

# p: the first 4 MiB wait 500 ms per request (reads and writes), the next 4 MiB are fast.
$BS dm create p <<EOF
0 8192 delay $T/f.img 0 500
8192 8192 linear $T/f.img 8192
EOF
$BS dm create d --table "0 16384 linear $T/g.img 0"
$BS dm create ro --readonly --table "0 16384 linear $T/g.img 0"
# x: the two halves of e.img swapped, then an error segment
mkimg 2M e.img
$BS dm create x <<EOF
0 2048 linear $T/e.img 2048
2048 2048 linear $T/e.img 0
4096 2048 error
EOF

# nbdsh itself: flags as advertised, one FUA write that lands in the file.
nbdsh -u "$(uri d)" -c '
assert h.can_fua() and h.can_flush() and h.can_trim() and h.can_zero()
assert h.can_multi_conn()
assert not h.can_fast_zero()
assert not h.is_read_only()
assert h.get_size() == 8 << 20
h.pwrite(b"\xa5" * 4096, 65536, nbd.CMD_FLAG_FUA)
assert h.pread(4096, 65536) == b"\xa5" * 4096
' || fail "nbdsh basic checks"
cmp -n 4096 -i 65536:0 g.img <(printf '\xa5%.0s' $(seq 4096)) || fail "FUA write not in the file"

$PY - "$NBD_SOCK" "$T" <<'PY' || fail "protocol checks"
import errno, os, sys, time
import nbd

sock, tdir = sys.argv[1], sys.argv[2]
MiB = 1 << 20
checks = 0


def conn(name, structured=True):
    h = nbd.NBD()
    h.set_export_name(name)
    h.set_request_structured_replies(structured)
    h.connect_unix(sock)
    return h


def expect_errno(e, fn, *args, **kw):
    global checks
    try:
        fn(*args, **kw)
    except nbd.Error as ex:
        if ex.errnum != e:
            sys.exit("%s%r: errno %s (%s), expected %s" %
                     (fn.__name__, args, ex.errnum, ex, errno.errorcode[e]))
        checks += 1
        return
    sys.exit("%s%r succeeded, expected %s" % (fn.__name__, args, errno.errorcode[e]))


def blocks(path):
    return os.stat(path).st_blocks


def file_bytes(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


g = os.path.join(tdir, "g.img")
for structured in (True, False):
    h = conn("d", structured)
    assert h.get_structured_replies_negotiated() == structured
    size = h.get_size()

    # TRIM: the range reads back as zeroes and its blocks are freed in the file.
    h.pwrite(os.urandom(MiB), MiB)
    h.flush()
    before = blocks(g)
    h.trim(256 * 1024, MiB + 128 * 1024)
    h.flush()
    if h.pread(256 * 1024, MiB + 128 * 1024) != bytes(256 * 1024):
        sys.exit("TRIM: range does not read as zeroes")
    if blocks(g) > before - 256 * 1024 // 512:
        sys.exit("TRIM did not free the file's blocks (%d -> %d)" % (before, blocks(g)))
    if file_bytes(g, MiB + 128 * 1024, 256 * 1024) != bytes(256 * 1024):
        sys.exit("TRIM: file not zero")

    # WRITE_ZEROES may punch a hole ...
    data = os.urandom(MiB)
    h.pwrite(data, 2 * MiB)
    h.flush()
    before = blocks(g)
    h.zero(128 * 1024, 2 * MiB)
    if h.pread(MiB, 2 * MiB) != bytes(128 * 1024) + data[128 * 1024:]:
        sys.exit("WRITE_ZEROES: wrong contents")
    if blocks(g) > before - 128 * 1024 // 512:
        sys.exit("WRITE_ZEROES without NO_HOLE kept the blocks")
    # ... but not with NO_HOLE: the blocks stay allocated.
    before = blocks(g)
    h.zero(128 * 1024, 2 * MiB + 256 * 1024, nbd.CMD_FLAG_NO_HOLE)
    if h.pread(MiB, 2 * MiB) != bytes(128 * 1024) + data[128 * 1024:256 * 1024] + \
            bytes(128 * 1024) + data[384 * 1024:]:
        sys.exit("WRITE_ZEROES with NO_HOLE: wrong contents")
    if blocks(g) < before:
        sys.exit("WRITE_ZEROES with NO_HOLE punched a hole (%d -> %d)" % (before, blocks(g)))
    # FUA on WRITE_ZEROES and TRIM is accepted
    h.zero(4096, 2 * MiB + 512 * 1024, nbd.CMD_FLAG_FUA)
    h.trim(4096, 2 * MiB + 516 * 1024, nbd.CMD_FLAG_FUA)
    if h.pread(8192, 2 * MiB + 512 * 1024) != bytes(8192):
        sys.exit("WRITE_ZEROES/TRIM with FUA")
    if file_bytes(g, 2 * MiB + 512 * 1024, 8192) != bytes(8192):
        sys.exit("WRITE_ZEROES/TRIM with FUA: file not zero")

    # FAST_ZERO is not offered; a client that sends it anyway gets ENOTSUP and nothing
    # changes.
    h.set_strict_mode(0)
    h.pwrite(b"\x77" * 4096, 3 * MiB)
    expect_errno(errno.ENOTSUP, h.zero, 4096, 3 * MiB, nbd.CMD_FLAG_FAST_ZERO)
    assert h.pread(4096, 3 * MiB) == b"\x77" * 4096, "FAST_ZERO changed data"

    # FUA writes of several sizes, unaligned too, are in the file when acknowledged.
    for off, n in ((4 * MiB, 512), (4 * MiB + 4096, 65536), (5 * MiB + 1, 3333)):
        buf = os.urandom(n)
        h.pwrite(buf, off, nbd.CMD_FLAG_FUA)
        if file_bytes(g, off, n) != buf:
            sys.exit("FUA write at %d+%d not in the file" % (off, n))
    h.flush()

    # DF (don't fragment) reads, structured replies only
    if structured:
        assert h.pread(4096, 4 * MiB + 4096, nbd.CMD_FLAG_DF) == file_bytes(g, 4 * MiB + 4096, 4096)

    # Past the end: EINVAL for reads, ENOSPC for writes, trims and zeroes; the connection
    # stays usable.
    expect_errno(errno.EINVAL, h.pread, 512, size)
    expect_errno(errno.EINVAL, h.pread, 1024, size - 512)
    expect_errno(errno.EINVAL, h.pread, 512, 1 << 62)
    expect_errno(errno.ENOSPC, h.pwrite, b"x" * 512, size)
    expect_errno(errno.ENOSPC, h.pwrite, b"x" * 1024, size - 512)
    expect_errno(errno.ENOSPC, h.trim, 512, size)
    expect_errno(errno.ENOSPC, h.zero, 4096, size - 512)
    # too large for the advertised maximum (32 MiB)
    expect_errno(errno.EOVERFLOW, h.pread, 33 * MiB, 0)
    # reads and writes that end exactly at the end are fine
    h.pwrite(b"e" * 512, size - 512)
    assert h.pread(512, size - 512) == b"e" * 512
    assert h.pread(0, size) == b""
    h.flush()
    h.shutdown()

# A read-only device refuses every kind of write with EPERM; reads and flush work.
h = conn("ro")
assert h.is_read_only()
h.set_strict_mode(0)
expect_errno(errno.EPERM, h.pwrite, b"x" * 512, 0)
expect_errno(errno.EPERM, h.trim, 4096, 0)
expect_errno(errno.EPERM, h.zero, 4096, 0)
assert h.pread(512, size - 512) == b"e" * 512
h.flush()
h.shutdown()

# ---- requests split at segment boundaries; the error target ----------------------------------
h = conn("x")
e = os.path.join(tdir, "e.img")
buf = os.urandom(MiB)
h.pwrite(buf, 512 * 1024, nbd.CMD_FLAG_FUA)  # crosses from the first segment into the second
if file_bytes(e, 1536 * 1024, 512 * 1024) != buf[:512 * 1024] or \
        file_bytes(e, 0, 512 * 1024) != buf[512 * 1024:]:
    sys.exit("a write across two segments was not split where the table says")
if h.pread(MiB, 512 * 1024) != buf:
    sys.exit("a read across two segments differs")
expect_errno(errno.EIO, h.pread, 4096, 2 * MiB)
expect_errno(errno.EIO, h.pwrite, b"w" * 4096, 2 * MiB + 4096)
expect_errno(errno.EIO, h.pread, 8192, 2 * MiB - 4096)  # the good half does not save it
h.flush()  # as with Linux's dm-error, which takes no flushes, a flush succeeds
assert h.pread(4096, 1536 * 1024 - 4096) == buf[-4096:], "an error reply disturbed the session"
expect_errno(errno.EIO, h.zero, 8192, 2 * MiB - 4096)  # (the good half may be zeroed)
h.shutdown()
h = conn("x", structured=False)
expect_errno(errno.EIO, h.pread, 4096, 2 * MiB)
assert h.pread(4096, MiB) == buf[512 * 1024:516 * 1024]
h.shutdown()

# ---- pipelining and out-of-order replies ----------------------------------------------------
h = conn("p")
SLOW, FAST = 0, 4 * MiB  # the delay segment, the linear one
# issue order: one slow write, two fast ones, ... (6 slow, 12 fast).  The server has 8
# workers per connection, so the slow writes never hold them all.
fill = {}
for i in range(6):
    fill[SLOW + i * 65536] = bytes([0x10 + i]) * 65536
    for k in (2 * i, 2 * i + 1):
        fill[FAST + k * 65536] = bytes([0x80 + k]) * 65536
# write them all at once, pipelined
order = []


def done(tag):
    def cb(err):
        order.append((tag, err))
        return 1
    return cb


t0 = time.monotonic()
for off, buf in fill.items():
    h.aio_pwrite(buf, off, completion=done(off))
inflight = h.aio_in_flight()
while h.aio_in_flight():
    h.poll(-1)
elapsed = time.monotonic() - t0
if any(e for _, e in order):
    sys.exit("pipelined writes failed: %r" % order)
if inflight < 18:
    sys.exit("only %d requests were in flight" % inflight)
# 6 delayed writes of 500 ms served concurrently: far less than 6 x 500 ms
if elapsed > 1.6:
    sys.exit("6 delayed writes took %.2f s: not served concurrently" % elapsed)
# every fast write completed before any slow one
tags = [t for t, _ in order]
first_slow = min(i for i, t in enumerate(tags) if t < FAST)
last_fast = max(i for i, t in enumerate(tags) if t >= FAST)
if last_fast > first_slow:
    sys.exit("writes: replies came in issue order, not completion order: %r" % tags)

# one slow read issued first, fast reads after it: the fast replies overtake it.
order.clear()
bufs = {}
c = h.aio_pread(nbd.Buffer(65536), SLOW, completion=done(SLOW))
bufs[SLOW] = c
time.sleep(0.05)
for i in range(6):
    off = FAST + i * 65536
    bufs[off] = h.aio_pread(nbd.Buffer(65536), off, completion=done(off))
while h.aio_in_flight():
    h.poll(-1)
tags = [t for t, _ in order]
if tags[-1] != SLOW or len(tags) != 7:
    sys.exit("reads: the delayed read was not answered last: %r" % tags)
print("completion order (reads):", [hex(t) for t in tags])

# many requests at once (more than the server's workers), data checked
order.clear()
bufs = []
for rnd in range(4):
    for off, want in fill.items():
        b = nbd.Buffer(65536)
        h.aio_pread(b, off, completion=done(off))
        bufs.append((b, off))
while h.aio_in_flight():
    h.poll(-1)
for b, off in bufs:
    if b.to_bytearray() != fill[off]:
        sys.exit("pipelined read at %#x returned wrong data" % off)
if len(order) != 4 * len(fill) or any(e for _, e in order):
    sys.exit("pipelined reads: %r" % order)
h.flush()
h.shutdown()

# ---- several connections at once: multi-conn --------------------------------------------------
hs = [conn("d") for _ in range(4)]
for x in hs:
    assert x.can_multi_conn()
# writes completed on one connection are visible to reads on every other, without a flush
for i, x in enumerate(hs):
    x.pwrite(bytes([0x40 + i]) * 4096, 6 * MiB + i * 4096)
for i in range(4):
    for j, y in enumerate(hs):
        if y.pread(4096, 6 * MiB + i * 4096) != bytes([0x40 + i]) * 4096:
            sys.exit("connection %d does not see connection %d's write" % (j, i))
# a flush on one connection covers writes completed on the others: after it the file has
# every connection's data
hs[3].flush()
for i in range(4):
    if file_bytes(g, 6 * MiB + i * 4096, 4096) != bytes([0x40 + i]) * 4096:
        sys.exit("write of connection %d not in the file after a flush on another" % i)
# concurrent pipelined writers on all connections, disjoint ranges, then check everything
datas = {}
for i, x in enumerate(hs):
    for k in range(16):
        off = 7 * MiB + (k * 4 + i) * 16384
        datas[off] = os.urandom(16384)
        x.aio_pwrite(datas[off], off)
while any(x.aio_in_flight() for x in hs):
    for x in hs:
        if x.aio_in_flight():
            x.poll(0)
    time.sleep(0.001)
hs[0].flush()
for off, want in datas.items():
    if hs[(off >> 14) % 4].pread(16384, off) != want or file_bytes(g, off, 16384) != want:
        sys.exit("multi-conn write at %#x lost" % off)
for x in hs:
    x.shutdown()
print("protocol checks passed, %d error replies as expected" % checks)
PY

# The connections are closed: the device can be removed, the daemon stops cleanly.
$BS dm remove p
stop_daemon
log ok
