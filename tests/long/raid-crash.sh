#!/bin/bash
# tests/long/raid-crash.sh - the RAID crash test (tests/integration/raid_crash.sh) run long:
# many rounds of kill -9 at random moments during random writes with flushes, restart,
# reassembly and byte-for-byte verification, for RAID5 and RAID6, each round with its own
# seed.  Not part of `make check` (which runs 50 crashes of RAID5); run it before a release
# or after touching the journal, the bitmap or the write paths.
#   tests/long/raid-crash.sh [-b BUILD] [-r ROUNDS] [-n CRASHES_PER_ROUND] [-l "5 6"] [-s SEED]
# Defaults: build/, 4 rounds of 100 crashes per level (800 crashes, about 16 minutes on a
# 2-vCPU machine).  Rounds are kept short because each verification replays the whole
# write log of its round.  A failing round prints its log and the command that repeats it.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$TOP/build
ROUNDS=4
ITER=100
LEVELS="5 6"
SEED=${RAID_CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
while [ $# -gt 0 ]; do
	case $1 in
	-b) BUILD=$(cd "$2" && pwd); shift ;;
	-r) ROUNDS=$2; shift ;;
	-n) ITER=$2; shift ;;
	-l) LEVELS=$2; shift ;;
	-s) SEED=$2; shift ;;
	*) echo "usage: $0 [-b BUILD] [-r ROUNDS] [-n CRASHES] [-l \"5 6\"] [-s SEED]" >&2; exit 2 ;;
	esac
	shift
done
[ -x "$BUILD/blkstackd" ] || { echo "raid-crash: no blkstackd in $BUILD (run make first)" >&2; exit 2; }

log=$(mktemp /tmp/raid-crash.XXXXXX)
trap 'rm -f "$log"' EXIT
total=0
for level in $LEVELS; do
	for round in $(seq 1 "$ROUNDS"); do
		s=$((SEED + (level * 1000 + round) * 100000))
		start=$SECONDS
		if ! BLKSTACK_BUILD=$BUILD BLKSTACK_CRASH_ITER=$ITER RAID_CRASH_LEVEL=$level \
			RAID_CRASH_SEED=$s bash "$TOP/tests/integration/raid_crash.sh" >"$log" 2>&1; then
			tail -n 40 "$log"
			echo "raid-crash: RAID$level round $round FAILED; repeat with:" >&2
			echo "  BLKSTACK_BUILD=$BUILD BLKSTACK_CRASH_ITER=$ITER RAID_CRASH_LEVEL=$level RAID_CRASH_SEED=$s bash tests/integration/raid_crash.sh" >&2
			exit 1
		fi
		total=$((total + ITER))
		echo "raid-crash: RAID$level round $round: $ITER crashes verified ($((SECONDS - start)) s, seed $s)"
	done
done
echo "raid-crash: $total crashes, every acknowledged-and-flushed block intact, parity consistent"
