#!/bin/bash
# raid-csum-bench.sh - the write cost of RAID's checksum log (`raid create --checksum-log`).
#
# Four RAID5 arrays, each over N member files of SIZE (default 4 x 256 MiB, chunk 512 KiB, made
# with --assume-clean, untimed), all served at once by one blkstackd over a unix NBD socket:
#   journal, journal-csum    consistency policy journal (the default), without / with the log
#   resync, resync-csum      policy resync (internal write-intent bitmap), without / with it
# Each run is `nbdcopy --flush SRC URI` of the whole array (sequential writes, nbdcopy's
# default connections and request size; --flush so that the log reaches the members too),
# MB/s = bytes / wall time.  The configurations take turns, run by run, so that the load of a
# shared machine falls on all of them alike; the median of --reps runs is reported.  Member
# files and the source are in the page cache, and every member is synced (untimed) before
# every run.  The cost of the log is 1 - MB/s with it / MB/s without it, per policy.
#   bench/raid-csum-bench.sh [-b BUILD] [-s SIZE] [-n MEMBERS] [-r REPS] [-c "CONFIGS"]
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$TOP/build
SIZE=256M
MEMBERS=4
REPS=5
CONFIGS="journal journal-csum resync resync-csum"
while [ $# -gt 0 ]; do
	case $1 in
	-b) BUILD=$(cd "$2" && pwd); shift ;;
	-s) SIZE=$2; shift ;;
	-n) MEMBERS=$2; shift ;;
	-r) REPS=$2; shift ;;
	-c) CONFIGS=$2; shift ;;
	*) echo "usage: $0 [-b BUILD] [-s SIZE] [-n MEMBERS] [-r REPS] [-c CONFIGS]" >&2; exit 2 ;;
	esac
	shift
done
BS=$BUILD/blkstack
# shellcheck source=bench/lib.sh
source "$TOP/bench/lib.sh"
bench_daemon raid-csum-bench

declare -A BYTES RUNS
for c in $CONFIGS; do
	opts=(--level 5 --raid-devices "$MEMBERS" --chunk 512 --assume-clean)
	case $c in
	journal*) opts+=(--consistency-policy journal) ;;
	resync*) opts+=(--consistency-policy resync) ;;
	*) echo "unknown configuration $c" >&2; exit 2 ;;
	esac
	case $c in *-csum) opts+=(--checksum-log) ;; esac
	devs=()
	for i in $(seq "$MEMBERS"); do
		truncate -s "$SIZE" "$W/$c-$i.img"
		devs+=("$W/$c-$i.img")
	done
	$BS raid create "$c" "${opts[@]}" "${devs[@]}" >/dev/null 2>&1
	BYTES[$c]=$(($($BS dm table "$c" | awk '{print $2}') * 512))
	RUNS[$c]=
done
# One source of random data per array size (they are the same unless the log moved the data).
for c in $CONFIGS; do
	[ -e "$W/src-${BYTES[$c]}" ] || head -c "${BYTES[$c]}" /dev/urandom >"$W/src-${BYTES[$c]}"
done
cat "$W"/src-* "$W"/*.img >/dev/null
for rep in $(seq "$REPS"); do
	for c in $CONFIGS; do
		sync "$W/$c"-*.img
		t0=$(date +%s.%N)
		nbdcopy --flush "$W/src-${BYTES[$c]}" "nbd+unix:///$c?socket=$W/nbd.sock"
		t1=$(date +%s.%N)
		RUNS[$c]+=" $(echo "${BYTES[$c]} / ($t1 - $t0) / 1000000" | bc -l)"
	done
	echo "round $rep done" >&2
done

declare -A MED
echo "RAID5 over $MEMBERS x $SIZE, sequential write (nbdcopy --flush), median of $REPS:"
for c in $CONFIGS; do
	MED[$c]=$(echo "${RUNS[$c]}" | median)
	printf '  %-13s %6.0f MB/s   (runs:%s)\n' "$c" "${MED[$c]}" \
		"$(for v in ${RUNS[$c]}; do printf ' %.0f' "$v"; done)"
done
echo "cost of the checksum log (1 - MB/s with it / without it):"
for p in journal resync; do
	[ -n "${MED[$p]:-}" ] && [ -n "${MED[$p-csum]:-}" ] || continue
	printf '  %-8s %5.1f%%\n' "$p" "$(echo "(1 - ${MED[$p-csum]} / ${MED[$p]}) * 100" | bc -l)"
done
