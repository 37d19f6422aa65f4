#!/bin/bash
# timeout: 900
# Crash safety of RAID5 with the journal: the daemon is killed (SIGKILL) at random moments
# during random writes with flushes, restarted and the array reassembled, again and again;
# every write acknowledged before a completed flush must be there, every other sector must
# hold old or new data of a write that was issued (never garbage), and a final check must
# find parity consistent.  The second half runs degraded (one member failed), where a
# torn stripe update would corrupt the missing member's data if the write hole were open.
# A quarter of the writes are whole stripes, which the journal lets go in place unlogged
# when no older record of their stripe is left (array_journal.c).
# Iterations: BLKSTACK_CRASH_ITER (default 50; 16 under the sanitizers, which are slower).
# RAID_CRASH_LEVEL=6 runs RAID6 over four members instead (two data, as RAID5's two);
# RAID_CRASH_SEED=N shifts every random choice (the kill times, the writes), for long runs
# (tests/long/raid-crash.sh).
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
IO="$PY $TOP/tests/integration/helpers/crashio.py"
ITER=${BLKSTACK_CRASH_ITER:-50}
[[ $BLKSTACK_BUILD == *asan* ]] && ITER=${BLKSTACK_CRASH_ITER:-16}
LEVEL=${RAID_CRASH_LEVEL:-5}
SEED=${RAID_CRASH_SEED:-0}
DEGRADED_FROM=$((ITER * 3 / 5))
case $LEVEL in
5) members="a b c" ;;
6) members="a b c d" ;;
*) fail "RAID_CRASH_LEVEL must be 5 or 6" ;;
esac
# shellcheck disable=SC2086
mkimg 16M $members
start_daemon
# shellcheck disable=SC2086
$BS raid create r5 --level "$LEVEL" --raid-devices $(wc -w <<<"$members") --chunk 64 \
	--assume-clean ${POLICY:-} $members 2>/dev/null
log "RAID$LEVEL over $members, seed $SEED, $ITER iterations"
sectors=$($BS dm table r5 | awk '{print $2}')
SIZE=$((sectors * 512))
run=""

for i in $(seq 1 "$ITER"); do
	if [ "$i" = "$DEGRADED_FROM" ]; then
		# A full-stripe write skips the journal; one torn by the last crash has stale
		# parity until the resync, which must run before a member goes (as with md's PPL).
		CRASHIO_STRIPE=131072 $IO write "$(uri r5)" state "$SIZE" 1 "$SEED" >/dev/null
		skipped=$(raid_detail r5 journal_skipped)
		[ "${POLICY:-}" ] || [ "$skipped" -gt 0 ] || fail "no full-stripe write skipped the journal"
		log "full-stripe writes without a record in one second: $skipped"
		$BS raid wait r5
		$BS raid fail r5 b 2>/dev/null
		members=${members/b /}
		run="--run"
		log "now degraded"
	fi
	CRASHIO_STRIPE=131072 $IO write "$(uri r5)" state "$SIZE" 30 "$((SEED + i))" >/dev/null 2>&1 &
	writer=$!
	sleep "$($PY -c "import random; random.seed($((SEED + i))); print(round(random.uniform(0.15, 0.9), 2))")"
	kill_daemon
	wait "$writer" 2>/dev/null || true
	start_daemon
	# shellcheck disable=SC2086
	$BS raid assemble r5 $members $run 2>assemble.err ||
		fail "iteration $i: assemble failed: $(cat assemble.err)"

	$IO verify "$(uri r5)" state "$SIZE" >verify.out || {
		cat verify.out
		fail "iteration $i: data lost or corrupted after the crash"
	}
	log "iteration $i: $(tail -1 verify.out)"
done
# A final scrub: the journal (replayed at each start) leaves no stripe inconsistent.
$BS raid wait r5
$BS raid check r5 --wait
mm=$($BS dm message r5 0 detail | sed -n 's/^mismatch_cnt: //p')
[ "$mm" = 0 ] || fail "mismatch_cnt $mm after $ITER crashes"
grep -q "replayed" "$T/daemon.log" || fail "no crash ever needed the journal: the test did not test it"
stop_daemon
log ok
