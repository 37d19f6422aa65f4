#!/bin/bash
# timeout: 300
# The journal policy lets a full-stripe write go in place without a record (nothing else of
# the stripe is left for a torn update to damage), but only when no older record of that
# stripe is left in a ring: a replay after a crash would put the older contents back over
# the newer write.  Checked on RAID5 and RAID6 with the daemon killed (SIGKILL) and the
# array reassembled:
#   - full stripes written on a fresh array take no record (journal_skipped counts them,
#     nothing is replayed after the crash) and read back intact;
#   - a 4 KiB write to a stripe whose unlogged full-stripe write is not yet flushed flushes
#     first (journal_flushes), and only then;
#   - a full stripe written over a stripe that has a record (a 4 KiB write just before) takes
#     a record too: after the crash both records are replayed in order and the stripe holds
#     the full-stripe write, not the 4 KiB write's data;
#   - once later records have overwritten that record in its ring, a full-stripe write to the
#     same stripe skips the journal again, and again nothing old comes back after a crash;
#     going round the rings without a flush from the client made the daemon flush;
#   - a scrub finds parity consistent, and RAID5 rebuilt from the other members after one is
#     failed gives the same bytes.
# And a member failed, removed and added back (as a spare, then rebuilt) brings no old
# records back with it: its ring still held records of the array from before it failed,
# which a replay after the next crash would have applied over newer data.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
start_daemon

# io URI OP...: each OP is "w:OFFSET:LENGTH:SEED" (write a pattern), "f" (flush) or
# "c:OFFSET:LENGTH:SEED" (compare), all through one connection.
io() {
	local u=$1
	shift
	$PY - "$u" "$@" <<'EOF'
import hashlib, sys
import nbd

def pat(seed, off, n):
    out = bytearray()
    blk = 0
    while len(out) < n:
        out += hashlib.sha256(b"%s:%d:%d" % (seed.encode(), off, blk)).digest()
        blk += 1
    return bytes(out[:n])

h = nbd.NBD()
h.connect_uri(sys.argv[1])
for op in sys.argv[2:]:
    p = op.split(":")
    if p[0] == "f":
        h.flush()
        continue
    off, n, seed = int(p[1]), int(p[2]), p[3]
    if p[0] == "w":
        h.pwrite(pat(seed, off, n), off)
    elif h.pread(n, off) != pat(seed, off, n):
        sys.exit("mismatch at %d+%d (expected %s)" % (off, n, seed))
h.shutdown()
EOF
}

detail() { raid_detail "$1" "$2"; }

check_level() {
	local level=$1 disks=$2 data=$3 members name=r$1
	local stripe=$((data * 65536))
	members=$(for i in $(seq 1 "$disks"); do echo "$level-$i"; done)
	# shellcheck disable=SC2086
	mkimg 24M $members
	# shellcheck disable=SC2086
	$BS raid create "$name" --level "$level" --raid-devices "$disks" --chunk 64 \
		--journal-size 1M --assume-clean $members 2>/dev/null

	# 1. Eight full stripes on a fresh array: no record.
	ops=()
	for s in $(seq 0 7); do ops+=("w:$((s * stripe)):$stripe:full$s"); done
	io "$(uri "$name")" "${ops[@]}" f
	[ "$(detail "$name" journal_skipped)" = 8 ] ||
		fail "RAID$level: $(detail "$name" journal_skipped) of 8 full-stripe writes skipped the journal"

	# 1b. A 4 KiB write to a stripe whose unlogged full-stripe write is not yet flushed
	#     flushes first (its record's parity counts on that write); elsewhere it does not,
	#     nor once a flush has covered the full-stripe write.
	#     (One connection each: the daemon flushes when a client disconnects.)
	f0=$(detail "$name" journal_flushes)
	io "$(uri "$name")" "w:$((30 * stripe)):$stripe:u30" "w:$((31 * stripe)):4096:p31"
	[ "$(detail "$name" journal_flushes)" = "$f0" ] ||
		fail "RAID$level: a record on another stripe flushed"
	io "$(uri "$name")" "w:$((32 * stripe)):$stripe:u32" f "w:$((32 * stripe)):4096:p32"
	[ "$(detail "$name" journal_flushes)" = "$f0" ] ||
		fail "RAID$level: a record flushed although a flush covered the full-stripe write"
	io "$(uri "$name")" "w:$((33 * stripe)):$stripe:u33" "w:$((33 * stripe + 8192)):4096:p33"
	[ "$(detail "$name" journal_flushes)" = $((f0 + 1)) ] ||
		fail "RAID$level: a record over an unflushed full-stripe write did not flush first"
	[ "$(detail "$name" journal_skipped)" = 11 ] ||
		fail "RAID$level: $(detail "$name" journal_skipped) full-stripe writes skipped, expected 11"

	# 2. A 4 KiB write to stripe 10, then the whole stripe: the second must be logged too.
	io "$(uri "$name")" "w:$((10 * stripe)):4096:small" f "w:$((10 * stripe)):$stripe:over" f
	[ "$(detail "$name" journal_skipped)" = 11 ] ||
		fail "RAID$level: a full-stripe write over a stripe with a record skipped the journal"
	kill_daemon
	start_daemon
	# shellcheck disable=SC2086
	$BS raid assemble "$name" $members 2>/dev/null
	# 1b's three 4 KiB records and these two
	[ "$(detail "$name" journal_replayed)" = 5 ] ||
		fail "RAID$level: $(detail "$name" journal_replayed) records replayed, expected 5"
	ops=()
	for s in $(seq 0 7); do ops+=("c:$((s * stripe)):$stripe:full$s"); done
	io "$(uri "$name")" "${ops[@]}" "c:$((10 * stripe)):$stripe:over" ||
		fail "RAID$level: data wrong after the crash"

	# 3. Enough 4 KiB writes elsewhere to overwrite every ring twice over: stripe 10's
	#    records are gone from disk, so its next full-stripe write needs none.
	ops=()
	for i in $(seq 0 1499); do ops+=("w:$(((20 + i % 60) * stripe + (i / 60) * 4096)):4096:fill$i"); done
	io "$(uri "$name")" "${ops[@]}"
	# Going round the rings with no flush from the client: the members were flushed
	# before a ring overwrote records whose in-place writes were not yet durable.
	[ "$(detail "$name" journal_flushes)" -gt 0 ] ||
		fail "RAID$level: the rings went round without a flush"
	io "$(uri "$name")" f "w:$((10 * stripe)):$stripe:again" f
	[ "$(detail "$name" journal_skipped)" = 1 ] ||
		fail "RAID$level: a full-stripe write after its stripe's records were overwritten was logged"
	kill_daemon
	start_daemon
	# shellcheck disable=SC2086
	$BS raid assemble "$name" $members 2>/dev/null
	[ "$(detail "$name" journal_replayed)" -gt 0 ] ||
		fail "RAID$level: nothing replayed after the 4 KiB writes"
	ops=("c:$((10 * stripe)):$stripe:again")
	for s in $(seq 0 7); do ops+=("c:$((s * stripe)):$stripe:full$s"); done
	for i in $(seq 0 1499); do ops+=("c:$(((20 + i % 60) * stripe + (i / 60) * 4096)):4096:fill$i"); done
	io "$(uri "$name")" "${ops[@]}" || fail "RAID$level: data wrong after the second crash"
	$BS raid wait "$name"
	$BS raid check "$name" --wait >/dev/null
	[ "$(detail "$name" mismatch_cnt)" = 0 ] ||
		fail "RAID$level: mismatch_cnt $(detail "$name" mismatch_cnt) after the crashes"

	# 4. Degraded: the data of a failed member comes back from parity.
	$BS raid fail "$name" "$level-1" 2>/dev/null
	ops=("c:$((10 * stripe)):$stripe:again")
	for s in $(seq 0 7); do ops+=("c:$((s * stripe)):$stripe:full$s"); done
	io "$(uri "$name")" "${ops[@]}" || fail "RAID$level: degraded read wrong"
	# A degraded array logs full stripes too (there is no resync to fix a torn one).
	io "$(uri "$name")" "w:$((3 * stripe)):$stripe:deg" f "c:$((3 * stripe)):$stripe:deg"
	[ "$(detail "$name" journal_skipped)" = 0 ] ||
		fail "RAID$level: a degraded full-stripe write skipped the journal"
	$BS raid stop "$name"
	log "RAID$level ok"
}

check_level 5 4 3
check_level 6 5 3

# A member comes back: records in its ring must not outlive its absence.
mkimg 24M x1 x2 x3
$BS raid create rx --level 5 --raid-devices 3 --chunk 64 --journal-size 1M --assume-clean \
	x1 x2 x3 2>/dev/null
stripe=131072
# A 4 KiB write to every stripe of the first 12: each parity member's ring gets records.
ops=()
for s in $(seq 0 11); do ops+=("w:$((s * stripe)):4096:old$s"); done
io "$(uri rx)" "${ops[@]}" f
$BS raid fail rx x1 2>/dev/null
$BS raid remove rx x1 2>/dev/null
ops=()
for s in $(seq 0 11); do ops+=("w:$((s * stripe)):4096:new$s"); done
io "$(uri rx)" "${ops[@]}" f
$BS raid add rx x1 2>/dev/null
$BS raid wait rx
[ "$($BS raid detail rx | grep -c 'active sync')" = 3 ] || fail "rebuild onto x1 did not finish"
# Dirty the array and crash: the replay reads every member's ring, x1's included.
io "$(uri rx)" "w:$((20 * stripe)):4096:dirty"
kill_daemon
start_daemon
$BS raid assemble rx x1 x2 x3 2>/dev/null
ops=()
for s in $(seq 0 11); do ops+=("c:$((s * stripe)):4096:new$s"); done
io "$(uri rx)" "${ops[@]}" || fail "a member added back: data from before it failed came back"
$BS raid stop rx
log "member added back ok"
stop_daemon
log ok
