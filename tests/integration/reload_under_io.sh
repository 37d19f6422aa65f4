#!/bin/bash
# timeout: 180
# dm suspend/resume and reload+resume with equivalent tables while four NBD writers
# (helpers/rwriter.py) pipeline pattern writes with flushes and FUA: no request fails,
# I/O is held (not failed) while suspended, and afterwards every acknowledged write is on
# the device with no torn block, read through two different but equivalent tables.  Also
# suspend --noflush: in-flight requests still finish, no flush is sent.
source "$(dirname "$0")/../lib/common.sh"
RW="$PY $TOP/tests/integration/helpers/rwriter.py"

cd "$T"
mkimg 8M a.img b.img
start_daemon

# Four tables for the same 16 MiB: chunk i (1 MiB) lives on a.img if i is even, b.img if
# odd, at (i/2) MiB.
t_striped="0 32768 striped 2 2048 $T/a.img 0 $T/b.img 0"
t_linear=$(for i in $(seq 0 15); do
	f=a
	[ $((i % 2)) -eq 1 ] && f=b
	echo "$((i * 2048)) 2048 linear $T/$f.img $((i / 2 * 2048))"
done)
t_halves="0 16384 striped 2 2048 $T/a.img 0 $T/b.img 0
16384 16384 striped 2 2048 $T/a.img 8192 $T/b.img 8192"
# the same chunks behind delay segments of 1 ms (released at every suspend)
t_delay=$(for i in $(seq 0 15); do
	f=a
	[ $((i % 2)) -eq 1 ] && f=b
	echo "$((i * 2048)) 2048 delay $T/$f.img $((i / 2 * 2048)) 1"
done)
tables=("$t_linear" "$t_halves" "$t_delay" "$t_striped")

$BS dm create r --table "$t_striped"
size=$((32768 * 512))

NW=4
SECS=14
pids=()
for w in $(seq 0 $((NW - 1))); do
	$RW write "$NBD_SOCK" r $w $NW $size $SECS state.$w >writer.$w.log 2>&1 &
	pids+=($!)
done
sleep 1

# A probe write while suspended must wait for resume, then succeed.  It goes to the last
# 64 KiB, which the writers leave alone.
probe() { # byte
	$PY - "$NBD_SOCK" "$1" $((size - 4096)) <<'PY'
import sys, nbd
h = nbd.NBD()
h.set_export_name("r")
h.connect_unix(sys.argv[1])
h.pwrite(bytes([int(sys.argv[2])]) * 4096, int(sys.argv[3]), nbd.CMD_FLAG_FUA)
h.shutdown()
PY
}

reloads=0 suspends=0
end=$((SECONDS + SECS - 2))
i=0
while [ $SECONDS -lt $end ]; do
	case $((i % 3)) in
	0) # plain suspend and resume, with a held probe write in between
		$BS dm suspend r
		$BS dm info r | grep -q '^State: *SUSPENDED$' || fail "not suspended"
		$BS dm status r >/dev/null
		probe $((i % 256)) &
		ppid=$!
		sleep 0.5
		kill -0 $ppid 2>/dev/null || fail "a write completed on a suspended device"
		$BS dm resume r
		wait $ppid || fail "the write held during suspend failed after resume"
		$PY -c 'import nbd, sys
h = nbd.NBD(); h.set_export_name("r"); h.connect_unix(sys.argv[1])
sys.exit(h.pread(4096, int(sys.argv[2])) != bytes([int(sys.argv[3])]) * 4096)' \
			"$NBD_SOCK" $((size - 4096)) $((i % 256)) ||
			fail "the write held during suspend is not on the device"
		suspends=$((suspends + 1))
		;;
	1) # reload with an equivalent table, then resume (which suspends first)
		$BS dm reload r --table "${tables[$((reloads % 4))]}"
		sleep 0.2
		$BS dm resume r
		reloads=$((reloads + 1))
		;;
	2) # suspend --noflush, reload while suspended, resume
		$BS dm suspend --noflush r
		$BS dm reload r --table "${tables[$((reloads % 4))]}"
		$BS dm resume r
		reloads=$((reloads + 1))
		suspends=$((suspends + 1))
		;;
	esac
	$BS dm info r | grep -q '^State: *ACTIVE$' || fail "not active after resume"
	i=$((i + 1))
	sleep 0.2
done
for p in "${pids[@]}"; do
	wait "$p" || { cat writer.*.log >&2; fail "a writer failed"; }
done
cat writer.*.log
log "$reloads reloads, $suspends suspends under I/O"
[ $reloads -ge 4 ] && [ $suspends -ge 4 ] || fail "too few table swaps ($reloads, $suspends)"
for w in $(seq 0 $((NW - 1))); do
	jq -e '.acked > 100 and .flushes > 5' state.$w >/dev/null || fail "writer $w did little: $(jq -c '{acked,flushes}' state.$w)"
done

# Every acknowledged write is there, untorn: through the live table, then through another
# equivalent one.
live=$($BS dm table r)
$RW verify "$NBD_SOCK" r $size state.* || fail "after the swaps (live table: ${live%%$'\n'*})"
if [[ $live == *striped* && $live != *$'\n'* ]]; then other=$t_linear; else other=$t_striped; fi
$BS dm reload r --table "$other"
$BS dm resume r
$RW verify "$NBD_SOCK" r $size state.* || fail "through another equivalent table"
# and after a restart of the daemon, from the files alone
stop_daemon
start_daemon
$BS dm create r --table "$t_halves"
$RW verify "$NBD_SOCK" r $size state.* || fail "after a restart"

# ---- a reload that changes the size, under an open connection --------------------------------
# The connection keeps the size it was given; requests past the new end fail with EINVAL
# (nothing is read or written out of the table); new connections see the new size.
$PY - "$NBD_SOCK" "$BS" "$T" <<'PY' || fail "size change under an open connection"
import errno, subprocess, sys
import nbd
sock, bs, t = sys.argv[1:]
MiB = 1 << 20
def dm(*a):
    subprocess.run([bs, "dm"] + list(a), check=True)
def conn():
    h = nbd.NBD()
    h.set_export_name("r")
    h.connect_unix(sock)
    return h
h = conn()
assert h.get_size() == 16 * MiB
keep = h.pread(4096, 0)
dm("reload", "r", "--table", "0 16384 linear %s/a.img 0" % t)
dm("resume", "r")
for fn, args in ((h.pread, (4096, 12 * MiB)), (h.pwrite, (b"z" * 4096, 12 * MiB)),
                 (h.pread, (8192, 8 * MiB - 4096)), (h.zero, (4096, 9 * MiB))):
    try:
        fn(*args)
        sys.exit("%s past the new end succeeded" % fn.__name__)
    except nbd.Error as e:
        assert e.errnum == errno.EINVAL, e
assert h.pread(4096, 0) == keep, "the old connection reads wrong data"
assert conn().get_size() == 8 * MiB, "a new connection does not see the new size"
dm("reload", "r", "--table", "0 32768 striped 2 2048 %s/a.img 0 %s/b.img 0" % (t, t))
dm("resume", "r")
assert conn().get_size() == 16 * MiB, "a new connection does not see the grown size"
h.shutdown()
PY
$RW verify "$NBD_SOCK" r $size state.* || fail "after the size changes"

# ---- suspend --noflush --------------------------------------------------------------------
# Writes wait 3 s in a delay segment.  Suspending, with or without --noflush, releases them
# at once and waits for them: the write completes and is in the file when suspend returns.
mkimg 1M n.img
$BS dm create n --table "0 2048 delay $T/n.img 0 0 $T/n.img 0 3000"
nbdsh() { PATH=/usr/bin:$PATH command nbdsh "$@"; }
for flag in --noflush ""; do
	nbdsh -u "$(uri n)" -c 'h.pwrite(b"\x5c" * 4096, 8192)' &
	wp=$!
	sleep 0.5
	[ "$($BS dm status n | awk '{print $5}')" = 1 ] || fail "the write is not waiting in the delay: $($BS dm status n)"
	t0=$(date +%s%N)
	$BS dm suspend $flag n
	took=$((($(date +%s%N) - t0) / 1000000))
	[ $took -lt 2000 ] || fail "suspend $flag took $took ms: delayed writes not released"
	cmp -n 4096 -i 8192:0 n.img <(printf '\x5c%.0s' $(seq 4096)) ||
		fail "suspend $flag returned before the in-flight write was done"
	$BS dm resume n
	wait $wp || fail "the released write failed"
	dd if=/dev/zero of=n.img bs=4096 seek=2 count=1 conv=notrunc status=none
done

# --noflush sends no flush: through a flakey target that fails everything, a flushing
# suspend reports the failed flush in the log and a --noflush one does not.
mkimg 1M f.img
$BS dm create f --table "0 2048 flakey $T/f.img 0 0 3600"
grep -c 'f: flush on suspend failed' daemon.log >n0 || true
$BS dm suspend --noflush f
$BS dm resume f
sleep 0.2
[ "$(grep -c 'f: flush on suspend failed' daemon.log)" = "$(cat n0)" ] ||
	fail "suspend --noflush flushed"
$BS dm suspend f
$BS dm resume f
sleep 0.2
[ "$(grep -c 'f: flush on suspend failed' daemon.log)" -gt "$(cat n0)" ] ||
	fail "suspend without --noflush did not flush"

stop_daemon
log ok
