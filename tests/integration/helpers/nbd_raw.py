#!/usr/bin/python3
"""nbd_raw.py - a raw-socket NBD client that misbehaves on purpose, for hostile-client tests.

  nbd_raw.py hostile SOCK EXPORT     every scenario below, in turn; exit 0 if the server
                                     answered each one as the spec (and docs/daemon.md) says
  nbd_raw.py silent SOCK LIMIT       connect, read the greeting, send nothing; exit 0 once the
                                     server hangs up, 1 if it has not within LIMIT seconds
  nbd_raw.py trickle SOCK LIMIT      as silent, but keep sending an option one byte every
                                     2 s, so that no single read ever times out
  nbd_raw.py noread SOCK EXPORT      pipeline reads and never read a reply; stays connected
                                     until the server hangs up (at most 5 minutes)

Only the standard library: the point is to send what libnbd never would.
"""

import errno
import os
import select
import socket
import struct
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x0003E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
STRUCT_MAGIC = 0x668E33EF

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_GO, OPT_STRUCTURED = 1, 2, 3, 7, 8
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
ERR = 1 << 31
REP_ERR_UNSUP, REP_ERR_INVALID, REP_ERR_UNKNOWN, REP_ERR_TOO_BIG = ERR | 1, ERR | 3, ERR | 6, ERR | 9
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3
FLAG_FUA = 1
MAX_OPTION = 4096
MAX_REQUEST = 32 << 20

passed = []


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    passed.append(what)


class Closed(Exception):
    pass


class Client:
    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)

    def recv(self, n):
        b = b""
        while len(b) < n:
            try:
                k = self.s.recv(n - len(b))
            except ConnectionResetError:
                k = b""
            if not k:
                raise Closed("server closed after %d of %d bytes" % (len(b), n))
            b += k
        return b

    def send(self, b):
        self.s.sendall(b)

    def closed(self, within=5):
        """True if the server hangs up within WITHIN seconds (any data is drained)."""
        self.s.settimeout(within)
        try:
            while True:
                k = self.s.recv(65536)
                if not k:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()

    # -- handshake
    def greeting(self):
        magic, opts, flags = struct.unpack(">QQH", self.recv(18))
        check(magic == NBDMAGIC and opts == IHAVEOPT, "greeting magic")
        check(flags & 1, "server offers fixed newstyle")
        return flags

    def start(self, cflags=3):
        self.greeting()
        self.send(struct.pack(">I", cflags))

    def option(self, opt, data=b"", magic=IHAVEOPT, length=None):
        self.send(struct.pack(">QII", magic, opt, len(data) if length is None else length) + data)

    def reply(self):
        magic, opt, typ, n = struct.unpack(">QIII", self.recv(20))
        check(magic == REPLY_MAGIC, "option reply magic")
        return opt, typ, self.recv(n)

    def go(self, name):
        self.option(OPT_GO, struct.pack(">I", len(name)) + name.encode() + struct.pack(">H", 0))
        info = {}
        while True:
            opt, typ, data = self.reply()
            check(opt == OPT_GO, "reply to GO names GO")
            if typ == REP_INFO:
                info[struct.unpack(">H", data[:2])[0]] = data[2:]
            elif typ == REP_ACK:
                size, flags = struct.unpack(">QH", info[0])
                return size, flags
            else:
                raise Closed("GO refused: %#x %r" % (typ, data))

    # -- transmission (simple replies: structured replies are not negotiated)
    def request(self, typ, off, length, handle, flags=0, payload=b"", magic=REQ_MAGIC):
        self.send(struct.pack(">IHHQQI", magic, flags, typ, handle, off, length) + payload)

    def simple_reply(self, data_len=0):
        magic, err, handle = struct.unpack(">IIQ", self.recv(16))
        check(magic == SIMPLE_MAGIC, "simple reply magic")
        data = self.recv(data_len) if err == 0 and data_len else b""
        return err, handle, data


def transmission(path, name):
    c = Client(path)
    c.start()
    size, flags = c.go(name)
    return c, size


def hostile(path, name):
    # 1. client flags without FIXED_NEWSTYLE, or with unknown bits: hang-up
    for cflags in (0, 0xFFFFFFFF, 1 | 0x100):
        c = Client(path)
        c.greeting()
        c.send(struct.pack(">I", cflags))
        check(c.closed(), "client flags %#x refused with a hang-up" % cflags)
        c.close()
    # 2. garbage instead of a handshake
    c = Client(path)
    c.greeting()
    c.send(b"GET / HTTP/1.0\r\n\r\n")
    check(c.closed(), "HTTP request instead of a handshake: hang-up")
    c.close()
    # 3. bad option magic: the stream is out of sync, hang-up
    c = Client(path)
    c.start()
    c.option(OPT_LIST, magic=0x1122334455667788)
    check(c.closed(), "bad option magic: hang-up")
    c.close()
    # 4. unknown option, malformed options: error replies, and the session goes on
    c = Client(path)
    c.start()
    c.option(999, b"junk")
    opt, typ, _ = c.reply()
    check(opt == 999 and typ == REP_ERR_UNSUP, "unknown option: NBD_REP_ERR_UNSUP")
    c.option(OPT_LIST, b"x")
    check(c.reply()[1] == REP_ERR_INVALID, "LIST with data: NBD_REP_ERR_INVALID")
    c.option(OPT_GO, b"\0\0")
    check(c.reply()[1] == REP_ERR_INVALID, "GO too short: NBD_REP_ERR_INVALID")
    c.option(OPT_GO, struct.pack(">I", 0xFFFFFFF0) + b"ab" + struct.pack(">H", 0))
    check(c.reply()[1] == REP_ERR_INVALID, "GO with a name longer than the option: INVALID")
    c.option(OPT_GO, struct.pack(">I", 3) + b"a\0b" + struct.pack(">H", 0))
    check(c.reply()[1] == REP_ERR_INVALID, "GO with a NUL in the name: INVALID")
    c.option(OPT_GO, struct.pack(">I", 2) + b"ab" + struct.pack(">H", 5) + b"\0\1")
    check(c.reply()[1] == REP_ERR_INVALID, "GO with more info requests than sent: INVALID")
    c.option(OPT_GO, struct.pack(">I", 6) + b"nosuch" + struct.pack(">H", 0))
    check(c.reply()[1] == REP_ERR_UNKNOWN, "GO for an unknown export: NBD_REP_ERR_UNKNOWN")
    c.option(OPT_STRUCTURED, b"x")
    check(c.reply()[1] == REP_ERR_INVALID, "STRUCTURED_REPLY with data: INVALID")
    # 5. oversized option: refused with TOO_BIG, its payload skipped, the session goes on
    c.option(OPT_LIST, b"\0" * (MAX_OPTION + 1))
    check(c.reply()[1] == REP_ERR_TOO_BIG, "oversized option: NBD_REP_ERR_TOO_BIG")
    c.option(OPT_LIST)
    names = []
    while True:
        opt, typ, data = c.reply()
        if typ == REP_ACK:
            break
        check(typ == REP_SERVER, "LIST reply")
        names.append(data[4:4 + struct.unpack(">I", data[:4])[0]].decode())
    check(name in names, "LIST still works after the errors (%r)" % names)
    c.option(OPT_ABORT)
    check(c.reply()[1] == REP_ACK, "ABORT acknowledged")
    check(c.closed(), "ABORT: hang-up")
    c.close()
    # 6. an absurd option length (4 GiB): hang-up at once, without waiting for the payload
    c = Client(path)
    c.start()
    c.option(OPT_LIST, length=0xFFFFFFFF)
    t0 = time.monotonic()
    check(c.closed(within=5), "4 GiB option: hang-up")
    check(time.monotonic() - t0 < 3, "4 GiB option: hang-up without waiting")
    c.close()
    # 7. EXPORT_NAME of an unknown export: the protocol allows only a hang-up
    c = Client(path)
    c.start()
    c.option(OPT_EXPORT_NAME, b"nosuch")
    check(c.closed(), "EXPORT_NAME of an unknown export: hang-up")
    c.close()
    # 8. option header cut short, then gone
    c = Client(path)
    c.start()
    c.send(struct.pack(">Q", IHAVEOPT) + b"\0\0")
    c.close()

    # ---- transmission phase
    c, size = transmission(path, name)
    check(size > 1 << 20, "export size")
    pat = bytes(range(256)) * 16
    c.request(CMD_WRITE, 4096, 4096, 1, payload=pat)
    check(c.simple_reply() == (0, 1, b""), "valid write")
    # out of range: EINVAL for reads, ENOSPC for writes (payload consumed), no crash
    c.request(CMD_READ, size, 512, 2)
    check(c.simple_reply() == (errno.EINVAL, 2, b""), "read at the end: EINVAL")
    c.request(CMD_READ, size - 512, 1024, 3)
    check(c.simple_reply() == (errno.EINVAL, 3, b""), "read across the end: EINVAL")
    c.request(CMD_READ, 0xFFFFFFFFFFFFFE00, 1024, 4)
    check(c.simple_reply() == (errno.EINVAL, 4, b""), "read at 2^64-512: EINVAL")
    c.request(CMD_WRITE, size, 4096, 5, payload=b"\xee" * 4096)
    check(c.simple_reply() == (errno.ENOSPC, 5, b""), "write past the end: ENOSPC")
    c.request(CMD_WRITE, 0xFFFFFFFFFFFFF000, 4096, 6, payload=b"\xee" * 4096)
    check(c.simple_reply() == (errno.ENOSPC, 6, b""), "write at 2^64-4096: ENOSPC")
    # oversized requests: EOVERFLOW; a write's payload is skipped and the stream stays in sync
    c.request(CMD_READ, 0, MAX_REQUEST + 512, 7)
    check(c.simple_reply() == (errno.EOVERFLOW, 7, b""), "33 MiB read: EOVERFLOW")
    c.request(CMD_WRITE, 0, MAX_REQUEST + 4096, 8, payload=b"\xdd" * (MAX_REQUEST + 4096))
    check(c.simple_reply() == (errno.EOVERFLOW, 8, b""), "33 MiB write: EOVERFLOW")
    # unknown command, unknown flags, FLUSH with a range: EINVAL
    c.request(99, 0, 512, 9)
    check(c.simple_reply() == (errno.EINVAL, 9, b""), "unknown command: EINVAL")
    c.request(CMD_READ, 0, 512, 10, flags=0x8000)
    check(c.simple_reply() == (errno.EINVAL, 10, b""), "unknown command flag: EINVAL")
    c.request(CMD_FLUSH, 0, 512, 11)
    check(c.simple_reply() == (errno.EINVAL, 11, b""), "FLUSH with a length: EINVAL")
    # the session is intact: the valid write reads back, nothing else was written
    c.request(CMD_READ, 0, 12288, 12)
    err, h, data = c.simple_reply(12288)
    check(err == 0 and h == 12 and data == bytes(4096) + pat + bytes(4096),
          "data intact after the bad requests")
    c.request(CMD_FLUSH, 0, 0, 13)
    check(c.simple_reply() == (0, 13, b""), "FLUSH")
    # a bad request magic: hang-up
    c.request(CMD_READ, 0, 512, 14, magic=0xDEADBEEF)
    check(c.closed(), "bad request magic: hang-up")
    c.close()
    # a write too large to skip (1 GiB): hang-up (or EOVERFLOW, then hang-up)
    c, _ = transmission(path, name)
    c.request(CMD_WRITE, 0, 1 << 30, 20)
    check(c.closed(), "1 GiB write: hang-up")
    c.close()
    # disconnect mid-request: header sent, payload half sent
    c, _ = transmission(path, name)
    c.request(CMD_WRITE, 8192, 1 << 20, 21, payload=b"\xcc" * (1 << 19))
    c.close()
    # disconnect mid-header
    c, _ = transmission(path, name)
    c.send(struct.pack(">IHH", REQ_MAGIC, 0, CMD_WRITE))
    c.close()
    # requests pipelined and then gone before the replies
    c, _ = transmission(path, name)
    for i in range(64):
        c.request(CMD_READ, i * 65536, 65536, 100 + i)
    c.close()
    # DISC with requests in flight: they finish, then the server hangs up
    c, _ = transmission(path, name)
    c.request(CMD_WRITE, 65536, 4096, 30, payload=b"\xab" * 4096)
    c.request(CMD_DISC, 0, 0, 31)
    check(c.simple_reply() == (0, 30, b""), "write before DISC answered")
    check(c.closed(), "DISC: hang-up")
    c.close()
    # the half-sent write reached nothing but what a whole request could: a fresh session
    # sees the data written above, and none of the refused writes
    c, _ = transmission(path, name)
    c.request(CMD_READ, 0, 1 << 20, 40)
    err, _, data = c.simple_reply(1 << 20)
    check(err == 0, "read after the hostile sessions")
    want = bytearray(1 << 20)
    want[4096:8192] = pat
    want[65536:69632] = b"\xab" * 4096
    check(data[4096:8192] == pat, "first write still there")
    check(data[65536:69632] == b"\xab" * 4096, "write before DISC is there")
    check(data == want, "nothing else landed: no refused payload, no half-sent write")
    c.close()
    print("hostile: %d checks passed" % len(passed))


def slow(path, limit, trickle):
    c = Client(path)
    c.greeting()
    t0 = time.monotonic()
    if trickle:
        # an unknown option with a 4000-byte payload, one byte every 2 s: it never completes
        c.send(struct.pack(">I", 3))
        msg = struct.pack(">QII", IHAVEOPT, 999, 4000) + bytes(4000)
        c.s.settimeout(2)
        i = 0
        while time.monotonic() - t0 < limit:
            try:
                c.s.send(msg[i:i + 1])
                i += 1
                if c.s.recv(1) == b"":
                    break
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    else:
        if not c.closed(within=limit):
            print("still connected after %.1f s" % (time.monotonic() - t0))
            return 1
    took = time.monotonic() - t0
    if took >= limit:
        print("still connected after %.1f s" % took)
        return 1
    print("server hung up after %.1f s" % took)
    return 0


def noread(path, name):
    c, size = transmission(path, name)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # enough 1 MiB reads to fill every socket buffer and hold every worker in send()
    n = 0
    c.s.settimeout(1)
    try:
        for i in range(256):
            c.request(CMD_READ, (i % 4) << 20, 1 << 20, i)
            n += 1
    except socket.timeout:
        pass
    print("noread: %d requests sent" % n, flush=True)
    # wait, without reading, until the server hangs up (or 5 minutes, should the test die)
    p = select.poll()
    p.register(c.s, select.POLLRDHUP | select.POLLHUP | select.POLLERR)
    end = time.monotonic() + 300
    while time.monotonic() < end and not p.poll(1000):
        pass


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "hostile":
        hostile(sys.argv[2], sys.argv[3])
    elif cmd in ("silent", "trickle"):
        sys.exit(slow(sys.argv[2], float(sys.argv[3]), cmd == "trickle"))
    elif cmd == "noread":
        noread(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
