#!/bin/bash
# timeout: 600
# raid grow: online reshape of RAID4/5/6 onto more members.  With a writer running, RAID5
# 3->4, RAID6 4->5 and RAID4 3->4 grow; afterwards the data is byte-identical, the device
# (a new NBD connection) has the new size, mdadm reads the new geometry, the members hold
# the layout an independent model computes, and a scrub finds no mismatch.  Then a RAID5
# grow is interrupted three times while a writer runs (SIGKILL twice, a clean stop once);
# each restart resumes it, and acknowledged-and-flushed data survives, through to the end.
# A RAID5 made by Linux md (a fixture) grows too, and a member failing in mid-grow stops
# the copy without losing data, also across a degraded restart.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
MODEL="$PY $TOP/tests/integration/helpers/mdlayout.py"
GROWIO="$PY $TOP/tests/integration/helpers/growio.py"
CRASHIO="$PY $TOP/tests/integration/helpers/crashio.py"
CHUNK=64 # KiB
data_offset() { mdadm --examine "$1" | sed -n 's/^ *Data Offset : \([0-9]*\) sectors/\1/p'; }
table_len() { $BS dm table "$1" | awk '{print $2}'; }
progress() { # percent of the running reshape, or "none"
	local p
	p=$(raid_detail "$1" sync_progress)
	[ "$(raid_detail "$1" sync_action)" = reshape ] && [ -n "$p" ] || { echo none; return; }
	echo $((${p%/*} * 100 / ${p#*/}))
}

# Throttled, so that the reshape runs long enough to be watched and interrupted.
export BLKSTACK_RAID_SPEED_MAX=4000
start_daemon

# grow_one NAME LEVEL LAYOUT LAYOUT_NUMBER OLD NEW: grow with a writer running, then check.
grow_one() {
	local name=$1 level=$2 layout=$3 laynum=$4 old=$5 new=$6 parity=1 i members=() spares=() writer
	[ "$level" = 6 ] && parity=2
	for i in $(seq 0 $((new - 1))); do
		mkimg 24M "$name.$i"
		if [ "$i" -lt "$old" ]; then members+=("$name.$i"); else spares+=("$name.$i"); fi
	done
	$BS raid create "$name" --level "$level" --raid-devices "$old" --chunk $CHUNK \
		--layout "$layout" --assume-clean "${members[@]}" 2>/dev/null
	local sectors off0
	sectors=$(table_len "$name")
	off0=$(data_offset "$name.0")
	head -c $((sectors * 512)) /dev/urandom >"$name.model"
	nbdcopy "$name.model" "$(uri "$name")"

	expect_error "needs $((new - old)) spares" $BS raid grow "$name" --raid-devices "$new"
	for s in "${spares[@]}"; do $BS raid add "$name" "$s" 2>/dev/null; done

	rm -f stop
	$GROWIO write "$(uri "$name")" "$name.model" 120 "$old$new" stop >"$name.writes" &
	writer=$!
	sleep 0.5
	$BS raid grow "$name" --raid-devices "$new" 2>/dev/null
	expect_error 'already in progress|busy' $BS raid grow "$name" --raid-devices "$new"
	expect_error 'busy with reshape' $BS raid check "$name"
	sleep 1
	$BS raid status | grep -qE "reshape = [0-9.]+% \([0-9]+/[0-9]+\) finish=" ||
		fail "$name: raid status shows no reshape progress: $($BS raid status)"
	$BS raid detail "$name" | grep -q "Delta Devices : $((new - old)), ($old->$new)" ||
		fail "$name: detail shows no delta devices"
	grep -q 'Feature Map : 0x45' <(mdadm --examine "$name.0") ||
		fail "$name: mdadm does not see the reshape: $(mdadm --examine "$name.0" | head -5)"
	$BS raid wait "$name" 2>/dev/null
	touch stop
	wait "$writer" || fail "$name: the writer failed"
	log "$name: $(cat "$name.writes") during the grow"

	# the new size, for a new connection
	local want=$(((sectors / (old - parity)) * (new - parity)))
	[ "$(table_len "$name")" = "$want" ] || fail "$name: table has $(table_len "$name") sectors, want $want"
	[ "$(raid_detail "$name" array_size)" = "$want" ] || fail "$name: detail array_size"
	[ "$(nbdinfo --size "$(uri "$name")")" = $((want * 512)) ] || fail "$name: NBD size"
	[ "$(raid_detail "$name" raid_devices)" = "$new" ] || fail "$name: raid_devices"

	# the data, byte for byte; the new space reads as zeroes
	nbdcopy "$(uri "$name")" "$name.back"
	cmp <(head -c $((sectors * 512)) "$name.back") "$name.model" || fail "$name: data differs after the grow"
	cmp <(tail -c +$((sectors * 512 + 1)) "$name.back") <(head -c $(((want - sectors) * 512)) /dev/zero) ||
		fail "$name: the new space is not zero"

	# mdadm's view and the member layout
	for i in $(seq 0 $((new - 1))); do
		ex=$(mdadm --examine "$name.$i")
		grep -q "Raid Devices : $new" <<<"$ex" || fail "$name.$i: mdadm raid devices"
		grep -q "Feature Map : 0x1$" <<<"$ex" || fail "$name.$i: reshape still flagged"
		grep -q "Device Role : Active device $i" <<<"$ex" || fail "$name.$i: role"
		grep -qE "Array State : A{$new} " <<<"$ex" || fail "$name.$i: array state"
		[ "$(data_offset "$name.$i")" = $((off0 - 4 * CHUNK * 2)) ] ||
			fail "$name.$i: data offset $(data_offset "$name.$i"), want $((off0 - 4 * CHUNK * 2))"
	done
	$BS dm suspend "$name"
	# shellcheck disable=SC2046
	$MODEL check "$level" "$laynum" $((CHUNK * 2)) "$name.back" $(seq -f "$name.%g" 0 $((new - 1))) --offset $((off0 - 4 * CHUNK * 2)) >/dev/null ||
		fail "$name: member layout differs from the model"
	$BS dm resume "$name"
	$BS raid check "$name" --wait
	[ "$(raid_detail "$name" mismatch_cnt)" = 0 ] || fail "$name: mismatch_cnt $(raid_detail "$name" mismatch_cnt)"

	# and after a restart of the array
	$BS raid stop "$name" 2>/dev/null
	# shellcheck disable=SC2046
	$BS raid assemble "$name" $(seq -f "$name.%g" 0 $((new - 1))) 2>/dev/null
	nbdcopy "$(uri "$name")" "$name.again"
	cmp "$name.back" "$name.again" || fail "$name: data differs after reassembly"
	$BS raid stop "$name" 2>/dev/null
	rm -f "$name".*
	log "$name: RAID$level $old -> $new ok"
}

grow_one r5 5 left-symmetric 2 3 4
grow_one r6 6 left-symmetric 2 4 5
grow_one r4 4 parity-last 5 3 4

# ---- an array made by Linux md grows too (the fixture's data stays, mdadm agrees) ----
FIX=$TOP/tests/fixtures/md/r5-ls-bm
if command -v xz >/dev/null; then
	for i in 0 1 2; do xz -dc "$FIX/r5-ls-bm-$i.img.xz" >"lx.$i"; done
	truncate -s 8M lx.3
	bytes=$(sed -n 's/^array_bytes=//p' "$FIX/info.txt")
	want=$(sed -n 's/^sha256=//p' "$FIX/info.txt")
	$BS raid assemble lx lx.0 lx.1 lx.2 2>/dev/null
	$BS raid add lx lx.3 2>/dev/null
	$BS raid grow lx --raid-devices 4 --wait 2>/dev/null
	[ "$(raid_detail lx raid_devices)" = 4 ] || fail "lx: raid devices"
	[ "$( (nbdcopy "$(uri lx)" - || true) | head -c "$bytes" | sha256sum | cut -d' ' -f1)" = "$want" ] ||
		fail "lx: the Linux-made array's data changed in the grow"
	mdadm --examine lx.3 | grep -q 'Device Role : Active device 3' || fail "lx: mdadm on the new member"
	$BS raid check lx --wait
	[ "$(raid_detail lx mismatch_cnt)" = 0 ] || fail "lx: mismatch_cnt"
	$BS raid stop lx 2>/dev/null
	log "lx: a Linux-made RAID5 3 -> 4 ok"
fi

# ---- refusals ----
mkimg 24M m0 m1 m2
$BS raid create m1 --level 1 --raid-devices 2 --assume-clean m0 m1 2>/dev/null
$BS raid add m1 m2 2>/dev/null
expect_error 'only RAID4/5/6' $BS raid grow m1 --raid-devices 3
$BS raid stop m1 2>/dev/null

# ---- crashes in the middle ----
export BLKSTACK_RAID_SPEED_MAX=1000
stop_daemon
start_daemon
mkimg 24M c0 c1 c2 c3
$BS raid create rc --level 5 --raid-devices 3 --chunk $CHUNK --assume-clean c0 c1 c2 2>/dev/null
SIZE=$(($(table_len rc) * 512))
$CRASHIO write "$(uri rc)" state "$SIZE" 2 1 >/dev/null 2>&1
$BS raid add rc c3 2>/dev/null
$CRASHIO write "$(uri rc)" state "$SIZE" 60 2 >/dev/null 2>&1 &
writer=$!
$BS raid grow rc --raid-devices 4 2>/dev/null
last=-1
for i in 1 2 3; do
	sleep "$($PY -c "import random; random.seed($i); print(round(random.uniform(1.5, 3.0), 2))")"
	p=$(progress rc)
	[ "$p" != none ] && [ "$p" -lt 100 ] || fail "crash $i: no reshape running ($p)"
	[ "$p" -ge "$last" ] || fail "crash $i: the reshape went back from $last% to $p%"
	last=$p
	if [ $i = 2 ]; then
		kill "$writer" && wait "$writer" 2>/dev/null || true
		stop_daemon # a clean stop in the middle of a grow
	else
		kill_daemon
		wait "$writer" 2>/dev/null || true
	fi
	log "crash $i at $p%"
	[ $i = 3 ] && unset BLKSTACK_RAID_SPEED_MAX
	start_daemon
	if [ $i = 2 ]; then
		$BS raid assemble --scan rc c3 c1 c0 c2 2>assemble.err
	else
		$BS raid assemble rc c3 c1 c0 c2 2>assemble.err
	fi || fail "crash $i: assemble: $(cat assemble.err)"
	[ "$(table_len rc)" = $((SIZE / 512)) ] || fail "crash $i: size changed before the end"
	$BS dm message rc 0 frozen # md's frozen holds the reshape while the data is checked
	$CRASHIO verify "$(uri rc)" state "$SIZE" >verify.out || {
		cat verify.out
		fail "crash $i: data lost or corrupted"
	}
	$BS raid idle rc
	if [ $i -lt 3 ]; then
		$CRASHIO write "$(uri rc)" state "$SIZE" 60 $((i + 10)) >/dev/null 2>&1 &
		writer=$!
	fi
done
[ "$(grep -c 'grow from 3 to 4 members resumed' daemon.log)" = 3 ] || fail "the grow was not resumed 3 times"
$BS raid wait rc 2>/dev/null
$CRASHIO verify "$(uri rc)" state "$SIZE" >verify.out || { cat verify.out; fail "data after the grow"; }
[ "$(table_len rc)" = $((SIZE / 512 * 3 / 2)) ] || fail "size after the resumed grow"
[ "$(raid_detail rc raid_devices)" = 4 ] || fail "raid devices after the resumed grow"
nbdcopy "$(uri rc)" rc.back
$BS dm suspend rc
$MODEL check 5 2 $((CHUNK * 2)) rc.back c0 c1 c2 c3 --offset "$(data_offset c0)" >/dev/null ||
	fail "member layout after the resumed grow"
$BS dm resume rc
$BS raid check rc --wait
[ "$(raid_detail rc mismatch_cnt)" = 0 ] || fail "mismatch_cnt $(raid_detail rc mismatch_cnt) after the crashes"
$BS raid stop rc 2>/dev/null

# ---- a member fails in the middle: the grow stops, the data stays there ----
export BLKSTACK_RAID_SPEED_MAX=1000
stop_daemon
start_daemon
mkimg 24M f0 f1 f2 f3
$BS raid create rf --level 5 --raid-devices 3 --chunk $CHUNK --assume-clean f0 f1 f2 2>/dev/null
sectors=$(table_len rf)
head -c $((sectors * 512)) /dev/urandom >rf.model
nbdcopy rf.model "$(uri rf)"
$BS raid add rf f3 2>/dev/null
$BS raid grow rf --raid-devices 4 2>/dev/null
sleep 2
p=$(progress rf)
[ "$p" != none ] && [ "$p" -lt 100 ] || fail "rf: no reshape running ($p)"
$BS raid fail rf f1 2>/dev/null
sleep 1
raid_detail rf reshape_paused | grep -q . || fail "rf: the grow did not stop after a failure"
p2=$(progress rf)
sleep 1
[ "$(progress rf)" = "$p2" ] || fail "rf: the grow went on with a failed member"
mdadm --examine f0 | grep -q 'Array State : A.AA' || fail "rf: the failure is not in the superblocks"
nbdcopy "$(uri rf)" rf.back && cmp rf.back rf.model || fail "rf: data differs, degraded in mid-grow"
kill_daemon
start_daemon
expect_error 'without --run' $BS raid assemble rf f0 f1 f2 f3
$BS raid assemble rf f0 f1 f2 f3 --run 2>/dev/null
[ "$(progress rf)" = "$p2" ] || fail "rf: the grow moved after the restart"
head -c 1048576 /dev/urandom >patch
dd if=patch of=rf.model bs=1M seek=3 conv=notrunc status=none
$PY -c "
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1]); h.pwrite(open('patch','rb').read(), 3 << 20); h.flush(); h.shutdown()" "$(uri rf)"
nbdcopy "$(uri rf)" rf.back && cmp rf.back rf.model || fail "rf: data differs after a degraded restart in mid-grow"
stop_daemon
log ok
