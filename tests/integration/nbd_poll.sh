#!/bin/bash
# timeout: 120
# The NBD server's adaptive polling (blkstackd --poll-us): bad values are refused; with
# polling on (the default), off and at its largest window, queue depth 1 reads and writes
# and a multi-connection copy give the right bytes; and a connection that goes quiet stops
# polling: the daemon uses little CPU while a client that has just run a burst of requests
# holds its connection open without sending anything.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
mkimg 8M a.img

for v in 1001 -1 abc ''; do
	expect_error 'poll-us' $BSD --foreground --control "$T/c.sock" --poll-us "$v"
	[ "$EXPECT_RC" = 2 ] || fail "--poll-us '$v': exit $EXPECT_RC"
done
[ ! -e c.sock ] || fail "a daemon that did not start left its control socket"

# Daemon CPU time (user + system) in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DAEMON_PID/stat"; }
HZ=$(getconf CLK_TCK)

# QD1 pattern writes and reads over one connection: each 4 KiB block i of the device gets a
# pattern made of its index and a round number; then the device is read back.  With IDLE,
# it keeps the connection open and silent for that many seconds afterwards, and prints
# "idle" on stdout once the burst is over.
qd1() { # round idle-seconds
	$PY - "$NBD_SOCK" "$1" "$2" <<'PY'
import sys, time, nbd
sock, rnd, idle = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
h = nbd.NBD()
h.set_export_name("p")
h.connect_unix(sock)
n = h.get_size() // 4096
blk = lambda i: ((b"%08d:%08d|" % (rnd, i)) * 228)[:4096]
for i in range(n):
    h.pwrite(blk(i), i * 4096)
for i in range(n):
    got = h.pread(4096, i * 4096)
    if got != blk(i):
        sys.exit("block %d read back wrong" % i)
h.flush()
if idle:
    print("idle", flush=True)
    time.sleep(idle)
    # still served after the quiet spell
    if h.pread(4096, 0) != blk(0):
        sys.exit("block 0 wrong after the idle spell")
h.shutdown()
PY
}

for opt in "" "--poll-us 0" "--poll-us 1000"; do
	log "daemon options: '${opt:-(default)}'"
	# shellcheck disable=SC2086
	start_daemon $opt
	$BS dm create p --table "0 16384 linear $T/a.img 0"
	qd1 1 0 || fail "QD1 round trip with '$opt'"
	randfile r.bin 8
	nbdcopy --connections=4 --requests=16 r.bin "$(uri p)"
	nbdcopy "$(uri p)" - | cmp - r.bin || fail "nbdcopy with '$opt': read back differs"
	cmp a.img r.bin || fail "nbdcopy with '$opt': file differs"
	qd1 2 0 || fail "QD1 round trip after nbdcopy with '$opt'"

	if [ -z "$opt" ]; then
		# A quiet connection stops polling: over 3 s of silence right after a QD1 burst
		# (the window at its widest), the daemon uses well under one CPU-second.  A
		# reader left polling would use all 3.
		qd1 3 4 >idle.out &
		qp=$!
		for _ in $(seq 300); do
			grep -q idle idle.out && break
			kill -0 $qp 2>/dev/null || break
			sleep 0.1
		done
		grep -q idle idle.out || fail "the QD1 burst did not finish"
		sleep 0.3
		c0=$(cpu_ticks)
		sleep 3
		c1=$(cpu_ticks)
		wait $qp || fail "QD1 client failed around the idle spell"
		used=$((c1 - c0))
		log "daemon CPU over 3 s of a silent connection: $used ticks (HZ $HZ)"
		[ "$used" -lt "$HZ" ] || fail "daemon used $used ticks of CPU while the client was silent"
	fi
	$BS dm remove p
	stop_daemon
done
log "ok"
