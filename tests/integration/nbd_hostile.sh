#!/bin/bash
# timeout: 150
# Hostile NBD clients (helpers/nbd_raw.py, raw sockets): bad handshakes, bad and oversized
# options, bad request magic, oversized and out-of-range requests, disconnects mid-request,
# a client that never reads its replies, and slow clients that never finish the handshake
# (silent, or trickling one byte at a time): each gets an error reply or a closed
# connection, while a well-behaved client (nbdcopy) keeps working throughout and the daemon
# still serves, and stops cleanly, at the end.
source "$(dirname "$0")/../lib/common.sh"
RAW="$PY $TOP/tests/integration/helpers/nbd_raw.py"

cd "$T"
mkimg 8M h.img w.img
start_daemon
$BS dm create h --table "0 16384 linear $T/h.img 0"
$BS dm create w --table "0 16384 linear $T/w.img 0"

# Slow clients first: the handshake allows 30 s (docs/daemon.md).
$RAW silent "$NBD_SOCK" 45 >silent.out 2>&1 &
silent_pid=$!
$RAW trickle "$NBD_SOCK" 45 >trickle.out 2>&1 &
trickle_pid=$!
slow_start=$SECONDS

# A well-behaved client copies data in and out the whole time.
randfile good.bin 2
echo 0 >good.count
(
	n=0
	while [ ! -e stop ]; do
		nbdcopy good.bin "$(uri w)" && nbdcopy "$(uri w)" good.out && cmp -s -n 2097152 good.out good.bin ||
			{ echo "round $n failed" >good.err; exit 1; }
		n=$((n + 1))
		echo $n >good.count.new && mv good.count.new good.count # never seen half-written
	done
) &
good_pid=$!

$RAW hostile "$NBD_SOCK" h || fail "hostile client scenarios"
kill -0 "$DAEMON_PID" || fail "daemon died"
[ "$(nbdinfo --size "$(uri h)")" = 8388608 ] || fail "daemon not serving after the hostile clients"
# what the hostile sessions wrote (and did not write) is what the file holds
$PY - h.img <<'PY' || fail "the file does not hold exactly the accepted writes"
import sys
want = bytearray(8 << 20)
want[4096:8192] = bytes(range(256)) * 16
want[65536:69632] = b"\xab" * 4096
sys.exit(open(sys.argv[1], "rb").read() != want)
PY

# A client that pipelines reads and never reads a reply holds its own workers only.
$RAW noread "$NBD_SOCK" h >noread.out 2>&1 &
noread_pid=$!
sleep 2
grep -q 'requests sent' noread.out || fail "noread client: $(cat noread.out)"
before=$(cat good.count)
sleep 2
[ "$(cat good.count)" -gt "$before" ] || fail "the good client stalled next to a non-reading one"
[ "$(nbdinfo --size "$(uri w)")" = 8388608 ] || fail "new connections stalled next to a non-reading client"

# The slow clients are hung up on after 30 s; the good client kept going meanwhile.
before=$(cat good.count)
wait $silent_pid || fail "silent client: $(cat silent.out)"
wait $trickle_pid || fail "trickling client: $(cat trickle.out)"
for f in silent trickle; do
	took=$(sed -n 's/^server hung up after \([0-9]*\).*/\1/p' $f.out)
	[ -n "$took" ] && [ "$took" -ge 28 ] && [ "$took" -le 40 ] ||
		fail "$f client hung up after ${took:-?} s, expected about 30: $(cat $f.out)"
done
log "slow clients hung up after $((SECONDS - slow_start)) s"
[ "$(cat good.count)" -gt "$before" ] || fail "the good client stalled while slow clients waited"
touch stop
wait $good_pid || fail "good client: $(cat good.err)"
log "good client: $(cat good.count) rounds"
kill -0 "$DAEMON_PID" || fail "daemon died"

# The daemon stops cleanly even with the non-reading client still connected.
timeout 20 bash -c "kill -TERM $DAEMON_PID; while kill -0 $DAEMON_PID 2>/dev/null; do sleep 0.2; done" ||
	fail "daemon did not stop within 20 s with a non-reading client connected"
stop_daemon_rc=0
wait "$DAEMON_PID" || stop_daemon_rc=$?
DAEMON_PID=
[ $stop_daemon_rc -eq 0 ] || fail "daemon exited with status $stop_daemon_rc"
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/daemon.log"; then
	fail "sanitizer report from the daemon"
fi
kill $noread_pid 2>/dev/null || true
wait $noread_pid 2>/dev/null || true
log ok
