#!/bin/bash
# timeout: 150
# blkstackd itself: sockets created mode 0600 (and stale ones replaced, a live daemon not
# displaced), the pidfile written and removed, detaching mode, NBD on TCP next to the unix
# socket, BLKSTACK_CONTROL for daemon and CLI alike, peer credentials checked, malformed and
# oversized control requests answered with an error while the daemon keeps serving,
# SIGHUP ignored, and SIGTERM/SIGINT with writes in flight: they finish and are answered,
# the data (never flushed by the client) is in the files, exit status 0.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
mkimg 8M a.img
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- bad command lines: exit 2 (usage) or 1, one line, nothing left behind ----------------
expect_error 'threads' $BSD --foreground --control "$T/c.sock" --threads 0
[ "$EXPECT_RC" = 2 ] || fail "--threads 0: exit $EXPECT_RC"
expect_error 'must be unix:PATH or tcp:HOST:PORT' \
	$BSD --foreground --control "$T/c.sock" --nbd "udp:1.2.3.4:5"
[ "$EXPECT_RC" = 1 ] || fail "bad --nbd: exit $EXPECT_RC"
expect_error 'unexpected argument' $BSD --foreground stray
[ ! -e c.sock ] || fail "a daemon that did not start left its control socket"

# ---- sockets, pidfile, TCP, BLKSTACK_CONTROL ---------------------------------------------------
P=$(port)
# a stale socket (nobody listening) is replaced
$PY -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/ctl.sock"
[ -S ctl.sock ] || fail "test broken: no stale socket"
start_daemon --pidfile "$T/d.pid" --nbd "tcp:127.0.0.1:$P"
for s in ctl.sock nbd.sock; do
	[ -S $s ] || fail "$s is not a socket"
	[ "$(stat -c %a $s)" = 600 ] || fail "$s has mode $(stat -c %a $s), expected 600"
done
[ "$(cat d.pid)" = "$DAEMON_PID" ] || fail "pidfile holds '$(cat d.pid)', daemon is $DAEMON_PID"
$BS daemon info | grep -qx "pid: $DAEMON_PID" || fail "daemon info: $($BS daemon info)"
$BS daemon info | grep -qx "nbd://127.0.0.1:$P" || fail "daemon info lists no TCP listener"
# a second daemon on the same control socket refuses to start and leaves the first alone
expect_error 'already running' $BSD --foreground --control "$T/ctl.sock" --nbd "unix:$T/n2.sock"
$BS dm ls >/dev/null || fail "the first daemon stopped answering"

$BS dm create d --table "0 16384 linear $T/a.img 0"
[ "$(nbdinfo --size "nbd://127.0.0.1:$P/d")" = 8388608 ] || fail "nbdinfo over TCP"
nbdinfo --json "nbd://127.0.0.1:$P/d" | jq -e '.exports[0].can_multi_conn and .exports[0].can_fua' \
	>/dev/null || fail "flags over TCP"
randfile r.bin 8
nbdcopy r.bin "nbd://127.0.0.1:$P/d"
nbdcopy "$(uri d)" - | cmp - r.bin || fail "written over TCP, read over unix: differs"
cmp a.img r.bin || fail "written over TCP: not in the file"
# BLKSTACK_CONTROL chooses the daemon: a wrong one fails with one line
BLKSTACK_CONTROL=$T/nosuch.sock expect_error 'nosuch.sock' $BS dm ls
# SIGHUP is ignored
kill -HUP "$DAEMON_PID"
sleep 0.3
kill -0 "$DAEMON_PID" || fail "SIGHUP killed the daemon"
$BS dm ls | grep -q '^d' || fail "not serving after SIGHUP"

# ---- peer credentials: only root and the daemon's uid ---------------------------------------
# (the socket's mode would stop uid 65534 before the daemon sees it: open it up to get there)
chmod 711 "$T"
chmod 666 ctl.sock
rc=0
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups $PY -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(5)
try:
    s.sendall(b"BKS1" + struct.pack(">II", 15, 0) + b"{\"op\":\"dm.ls\"}")
    sys.exit(3 if s.recv(100) else 0)
except (BrokenPipeError, ConnectionResetError):
    pass  # hung up on before or after the request: refused either way' "$BLKSTACK_CONTROL" 2>&1) || rc=$?
chmod 600 ctl.sock
chmod 700 "$T"
[ $rc -eq 0 ] || fail "a client with uid 65534 was not simply disconnected (exit $rc): $out"
grep -q 'refused a client with uid 65534' daemon.log || fail "refusal not logged"
grep -q 'refused a client with uid 65534' daemon.log || fail "refusal not logged"

# ---- malformed and oversized control requests -------------------------------------------------
$PY - "$BLKSTACK_CONTROL" <<'PY' || fail "control protocol abuse"
import json, socket, struct, sys, time

path = sys.argv[1]


def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s


def recv_all(s, n):
    b = b""
    while len(b) < n:
        k = s.recv(n - len(b))
        if not k:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += k
    return b


def reply(s):
    hdr = recv_all(s, 12)
    assert hdr[:4] == b"BKS1", hdr
    jl, dl = struct.unpack(">II", hdr[4:])
    o = json.loads(recv_all(s, jl))
    recv_all(s, dl)
    return o


def frame(obj=None, data=b"", raw=None, magic=b"BKS1", jlen=None, dlen=None):
    js = raw if raw is not None else json.dumps(obj).encode()
    return magic + struct.pack(">II", len(js) if jlen is None else jlen,
                               len(data) if dlen is None else dlen) + js + data


def closed(s):
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def expect_proto(payload, what, close_after_send=False):
    s = conn()
    s.sendall(payload)
    if close_after_send:
        s.shutdown(socket.SHUT_WR)
    o = reply(s)
    assert o["ok"] is False and o["errno"] == 71, (what, o)
    assert "malformed request" in o["error"], (what, o)
    assert closed(s), what + ": connection not closed"
    s.close()
    print("ok: %s -> %s" % (what, o["error"]))


expect_proto(b"GET / HTTP/1.0\r\n\r\n", "HTTP instead of a frame")
expect_proto(frame({"op": "dm.ls"}, magic=b"XXXX"), "bad magic")
expect_proto(frame(raw=b"", jlen=2 << 20), "JSON length 2 MiB")
expect_proto(frame(raw=b"", jlen=0xFFFFFFFF), "JSON length 4 GiB")
expect_proto(frame(raw=b"{}", jlen=1), "JSON length 1")
expect_proto(frame({"op": "dm.ls"}, dlen=5 << 20), "data length 5 MiB")
expect_proto(frame(raw=b"{not json"), "not JSON")
expect_proto(frame(raw=b"[1, 2, 3]"), "a JSON array")
expect_proto(frame(raw=b'{"op": "dm.ls"} trailing'), "trailing bytes")
expect_proto(frame(raw=b'{"op": "d\0m.ls"}'), "NUL in JSON")
expect_proto(frame(raw=b'{"op": "dm.info"' + b"}" * 0, jlen=100), "truncated JSON",
             close_after_send=True)
# a deeply nested object is refused by the parser's depth limit, not by a crash
expect_proto(frame(raw=b'{"a":' * 5000 + b"1" + b"}" * 5000), "nesting 5000 deep")

# well-formed frames with bad requests: an error reply, and the connection goes on
s = conn()
for obj, what in (({"op": "no.such.op"}, "unknown request"),
                  ({"nop": 1}, "has no \"op\""),
                  ({"op": 42}, "has no \"op\""),
                  ({"op": "dm.create"}, "no \"name\""),
                  ({"op": "dm.remove", "name": "x" * 100000}, "does not exist"),
                  ({"op": "dm.create", "name": "big", "cwd": "relative"}, "")):
    s.sendall(frame(obj))
    o = reply(s)
    assert o["ok"] is False and isinstance(o["errno"], int) and o["errno"] > 0, (obj, o)
    assert what in o["error"], (what, o)
    print("ok: %s -> %s" % (str(obj)[:40], o["error"][:80]))
# a maximal frame (1 MiB of JSON, 4 MiB of data) is read whole and answered
big = {"op": "dm.message", "name": "nosuch", "sector": 0, "pad": "p" * ((1 << 20) - 80)}
js = json.dumps(big).encode()
assert len(js) <= 1 << 20, len(js)
s.sendall(frame(raw=js, data=b"m" * (4 << 20)))
o = reply(s)
assert o["ok"] is False and "does not exist" in o["error"], o
s.sendall(frame({"op": "daemon.info"}))
o = reply(s)
assert o["ok"] is True and o["pid"] > 0, o
s.close()
# a client that sends half a frame and goes away, and one that never sends anything
s = conn()
s.sendall(b"BKS1\0\0")
s.close()
idle = conn()
s = conn()
s.sendall(frame({"op": "daemon.info"}))
assert reply(s)["ok"] is True, "served next to an idle client"
s.close()
idle.close()
print("control protocol: all refused as documented")
PY
kill -0 "$DAEMON_PID" || fail "daemon died"
$BS dm ls | grep -q '^d' || fail "not serving after the malformed requests"
$BS dm table d | grep -q "linear $T/a.img 0" || fail "a malformed request changed a table"

# ---- SIGTERM with writes in flight --------------------------------------------------------------
# Writes wait 1.5 s in a delay segment; the client never flushes.  SIGTERM while eight are
# waiting: the daemon lets them finish and answers them, flushes, exits 0.
mkimg 4M w.img
$BS dm create slow --table "0 8192 delay $T/w.img 0 0 $T/w.img 0 1500"
$PY - "$NBD_SOCK" >inflight.out 2>&1 <<'PY' &
import sys, nbd
h = nbd.NBD()
h.set_export_name("slow")
h.connect_unix(sys.argv[1])
acked = []
def cb(i):
    def f(err):
        if not err:
            acked.append(i)
        return 1
    return f
for i in range(8):
    h.aio_pwrite(bytes([0x30 + i]) * 65536, i * 65536, completion=cb(i))
try:
    while h.aio_in_flight():
        h.poll(-1)
except nbd.Error as e:
    print("connection error:", e)
print("acked", " ".join(map(str, sorted(acked))))
PY
client=$!
for _ in $(seq 50); do
	[ "$($BS dm status slow | awk '{print $5}')" = 8 ] && break
	sleep 0.1
done
[ "$($BS dm status slow | awk '{print $5}')" = 8 ] || fail "writes not waiting: $($BS dm status slow)"
t0=$SECONDS
stop_daemon # fails unless the exit status is 0 and no sanitizer complained
[ $((SECONDS - t0)) -lt 5 ] || fail "shutdown took $((SECONDS - t0)) s"
wait $client || fail "client: $(cat inflight.out)"
grep -qx 'acked 0 1 2 3 4 5 6 7' inflight.out || fail "in-flight writes not all answered: $(cat inflight.out)"
$PY - w.img <<'PY' || fail "acknowledged writes are not in the file after shutdown"
import sys
d = open(sys.argv[1], "rb").read()
for i in range(8):
    assert d[i * 65536:(i + 1) * 65536] == bytes([0x30 + i]) * 65536, i
PY
[ ! -e d.pid ] || fail "pidfile left behind"
[ ! -e ctl.sock ] && [ ! -e nbd.sock ] || fail "sockets left behind"
grep -q 'stopped' daemon.log || fail "no 'stopped' in the log"

# ---- SIGTERM with suspended devices, one of them holding a request ------------------------------
# Nothing can resume them any more: the held request is failed (ESHUTDOWN) or its connection
# closed, and the daemon exits 0 instead of waiting for ever.
start_daemon
$BS dm create held --table "0 2048 linear $T/w.img 0"
$BS dm create idle --table "0 2048 linear $T/w.img 2048"
$BS dm suspend held
$BS dm suspend --noflush idle
$PY - "$NBD_SOCK" >held.out 2>&1 <<'PY' &
import sys, nbd
h = nbd.NBD()
h.set_export_name("held")
h.connect_unix(sys.argv[1])
try:
    h.pread(4096, 0)
    print("read succeeded")
except nbd.Error as e:
    print("read failed:", e.errno)
PY
client=$!
sleep 0.5
kill -0 $client 2>/dev/null || fail "a read on a suspended device was not held: $(cat held.out)"
kill -TERM "$DAEMON_PID"
for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DAEMON_PID" 2>/dev/null && fail "SIGTERM: daemon still running after 10 s with suspended devices"
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
[ $rc -eq 0 ] || fail "daemon exited with status $rc"
! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' daemon.log || fail "sanitizer report"
wait $client || true
grep -qE 'read failed: (ESHUTDOWN|ENOTCONN|EIO)|read failed' held.out ||
	fail "the held read: $(cat held.out)"
[ ! -e ctl.sock ] || fail "socket left behind"
log "the held read: $(cat held.out)"

# ---- detached (no --foreground), BLKSTACK_CONTROL for the daemon too, SIGINT ------------------
export BLKSTACK_CONTROL=$T/sub/dir/other.sock
$BSD --nbd "unix:$T/nbd2.sock" --pidfile "$T/bg.pid" >bg.out 2>&1 || fail "detached start failed: $(cat bg.out)"
[ ! -s bg.out ] || fail "detached daemon printed: $(cat bg.out)"
[ -S sub/dir/other.sock ] || fail "BLKSTACK_CONTROL not used by the daemon"
[ "$(stat -c %a sub/dir/other.sock)" = 600 ] || fail "control socket mode with BLKSTACK_CONTROL"
bgpid=$(cat bg.pid)
DAEMON_PID=$bgpid # for the cleanup, should the test fail
kill -0 "$bgpid" || fail "detached daemon not running"
[ "$(ps -o sid= -p "$bgpid" | tr -d ' ')" = "$bgpid" ] || fail "detached daemon is not a session leader"
$BS dm create e --table "0 2048 zero" || fail "CLI with BLKSTACK_CONTROL"
[ "$(nbdinfo --size "nbd+unix:///e?socket=$T/nbd2.sock")" = 1048576 ] || fail "detached daemon NBD"
# a detached daemon that cannot start says so through the parent's exit status
rc=0
$BSD --nbd "unix:$T/nbd3.sock" 2>err.txt || rc=$?
[ $rc -eq 1 ] && grep -q 'already running' err.txt || fail "second detached daemon: exit $rc, $(cat err.txt)"
kill -INT "$bgpid"
for _ in $(seq 50); do kill -0 "$bgpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$bgpid" 2>/dev/null && fail "detached daemon ignored SIGINT"
DAEMON_PID=
[ ! -e bg.pid ] && [ ! -e sub/dir/other.sock ] || fail "detached daemon left its pidfile or socket"
log ok
