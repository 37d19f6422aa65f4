#!/bin/bash
# timeout: 60
# Unix-socket NBD connections get a 1 MiB send buffer (capped by net.core.wmem_max), so a
# 256 KiB read reply fits without the worker waiting on the client; the kernel reports
# twice what was set.  Then a deeply pipelined copy of large reads through that buffer
# returns the right bytes.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
randfile a.img 32
start_daemon
$BS dm create s --table "0 $(sectors a.img) linear $T/a.img 0"

max=$(cat /proc/sys/net/core/wmem_max)
want=$((2 * (max < 1048576 ? max : 1048576)))
# A client that holds its connection open while the server's end is looked at.
PATH=/usr/bin:$PATH nbdsh -u "$(uri s)" -c 'import time; time.sleep(3)' &
cp=$!
tb=
for _ in $(seq 50); do
	# The daemon's end of a connection to its NBD socket (ss lists connected sockets).
	tb=$(ss -x -m -p -O | grep -F "$NBD_SOCK " | grep -F "pid=$DAEMON_PID," |
		sed -n 's/.*,tb\([0-9]*\),.*/\1/p' | head -n1 || true)
	[ -z "$tb" ] || break
	sleep 0.1
done
wait $cp
[ -n "$tb" ] || fail "no unix connection of the daemon seen by ss"
[ "$tb" = "$want" ] || fail "send buffer $tb bytes, expected $want (wmem_max $max)"
log "send buffer $tb bytes"

nbdcopy --connections=2 --requests=64 --request-size=262144 "$(uri s)" out.bin
cmp out.bin a.img || fail "pipelined 256 KiB reads returned different bytes"
stop_daemon
