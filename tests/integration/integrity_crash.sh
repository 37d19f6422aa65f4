#!/bin/bash
# timeout: 180
# Crash safety of the integrity target, with the daemon killed (SIGKILL) at random moments
# during random writes with flushes (helpers/crashio.py), restarted and the device reopened:
#   journal mode (a 1 MiB journal of 11 sections, so commits wrap the ring often): after each
#     restart the journal is replayed; the whole device must read without a single checksum
#     error, every write acknowledged before a completed flush must be there and every other
#     sector must hold old or new data of an issued write;
#   bitmap mode: after each restart the dirty regions are recalculated; once that finishes a
#     full read is clean and holds the same guarantees.
# After the last round, an independent checker verifies every tag on the closed images.
# A write acknowledged but not covered by a flush that completed before a crash may be lost
# in that crash (the journal is a volatile write cache until committed, as in Linux): after
# each crash its acknowledgement is dropped from crashio's log, so that a flush issued after
# the restart is not taken to cover it.
# Iterations: BLKSTACK_CRASH_ITER journal rounds (default 24) and a quarter as many bitmap ones.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
IO="$PY $TOP/tests/integration/helpers/crashio.py"
CHK="$PY $TOP/tests/integration/helpers/integrity_check.py"
ITER=${BLKSTACK_CRASH_ITER:-24}
BITER=$((ITER / 4))

mkimg 16M j.img b.img
$BS integrity format -q --journal-size 1M j.img
$BS integrity format -q --journal-size 1M b.img
start_daemon

# end_session STATE: closes a crashed writer's session in crashio's log (see above).
end_session() {
	$PY - "$1" <<'PY'
import sys
path = sys.argv[1]
lines = open(path).read().splitlines()
start = max([i for i, l in enumerate(lines) if l == "S"], default=-1) + 1
issued_at, cut = {}, start
for i in range(start, len(lines)):
    w = lines[i].split()
    if w and w[0] == "f":
        issued_at[w[1]] = i
    elif w and w[0] == "F" and w[1] in issued_at:
        cut = issued_at[w[1]]  # acks before this flush was issued are durable
kept = lines[:cut] + [l for l in lines[cut:] if not l.startswith("A ")]
open(path, "w").write("\n".join(kept + ["S"]) + "\n")
PY
}

# crash ITERATIONS NAME IMAGE OPEN-OPTIONS...: the write/kill/restart/verify loop
crash() {
	local iters=$1 name=$2 img=$3 size i
	shift 3
	$BS integrity open "$img" "$name" "$@"
	size=$(($($BS dm table "$name" | awk '{print $2}') * 512))
	rm -f "state.$name"
	for i in $(seq 1 "$iters"); do
		$IO write "$(uri "$name")" "state.$name" "$size" 30 "$i" >/dev/null 2>&1 &
		writer=$!
		sleep "$($PY -c "import random; random.seed($i); print(round(random.uniform(0.1, 0.5), 2))")"
		kill_daemon
		wait "$writer" 2>/dev/null || true
		end_session "state.$name"
		rm -f "$BLKSTACK_CONTROL" "$NBD_SOCK" # stale: start_daemon waits for new ones
		start_daemon
		$BS integrity open "$img" "$name" "$@" || fail "$name round $i: reopen failed"
		if [ "$name" = bm ]; then
			# the recalculation of the dirty regions must finish
			local rs=
			for _ in $(seq 300); do
				rs=$($BS dm status "$name" | awk '{print $6}')
				[ "$rs" = "$((size / 512))" ] && break
				sleep 0.1
			done
			[ "$rs" = "$((size / 512))" ] || fail "$name round $i: recalculation stuck at $rs"
		fi
		$IO verify "$(uri "$name")" "state.$name" "$size" >verify.out 2>&1 || {
			cat verify.out
			fail "$name round $i: checksum errors, lost or corrupted data after the crash"
		}
		[ "$($BS dm status "$name" | awk '{print $4}')" = 0 ] ||
			fail "$name round $i: mismatches counted: $($BS dm status "$name")"
		log "$name round $i: $(tail -1 verify.out)"
	done
	$BS integrity close "$name"
}

crash "$ITER" jr j.img
grep -q "journal replayed" "$T/daemon.log" || fail "no crash ever needed the journal: the test did not test it"
crash "$BITER" bm b.img --integrity-bitmap-mode --bitmap-sectors-per-bit 2048
grep -q "unclean stop in bitmap mode" "$T/daemon.log" || fail "no crash left a dirty bitmap"
stop_daemon

$CHK verify j.img crc32c || fail "journal mode: tags on disk do not match after the crashes"
$CHK verify b.img crc32c || fail "bitmap mode: tags on disk do not match after the crashes"
integritysetup dump b.img | grep -q "flags.*dirty_bitmap" && fail "bitmap still dirty after a clean close"
log ok
