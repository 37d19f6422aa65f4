#!/bin/bash
# raid-bench.sh - blkstack's parity RAID against `striped` over the same kind of files.
#
# One blkstackd serves every configuration at once over a unix NBD socket; each has its
# own sparse member files (default 256 MiB each) in one scratch directory:
#   striped4      `striped` over 4 files, 64 KiB chunks: the data disks of raid5/raid6
#   striped5      `striped` over 5 files
#   raid5         `raid create --level 5 --raid-devices 5 --chunk 64K --assume-clean
#                 --consistency-policy resync` (md superblocks, internal bitmap; md's policy)
#   raid5-journal the same with --consistency-policy journal (blkstack's default for new
#                 RAID4/5/6: no write hole)
#   raid6         `--level 6 --raid-devices 6`, otherwise as raid5
#   raid6-journal the same with --consistency-policy journal
# Four data disks of 64 KiB make a 256 KiB stripe, nbdcopy's request size: its sequential
# writes are full-stripe writes.
# Rows, each the median of --reps runs, the configurations taking turns run by run:
#   seq write     `nbdcopy --flush SRC URI` of the whole device: full-stripe writes (MB/s)
#   seq read      `nbdcopy URI null:` (MB/s)
#   4K rand write fio --ioengine=nbd, 4 KiB random writes at queue depth 32 (IOPS)
#   degraded read raid5 and raid6 again after `raid fail` of one member (MB/s)
# and the ceiling: parity_bench, ISA-L computing P and P+Q in memory on one thread.
# The goals (issue 4): raid5/raid6 sequential write at least 80% of striped4's, degraded
# read at least 50% of healthy.  The member files are in the page cache: this measures the
# engine, not a disk.
#   bench/raid-bench.sh [-b BUILD] [-s MEMBER_SIZE] [-r REPS] [-t FIO_SECONDS] [-c "CONFIGS"]
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$TOP/build
SIZE=256M
REPS=3
RUNTIME=5
CONFIGS="striped4 striped5 raid5 raid5-journal raid6 raid6-journal"
while [ $# -gt 0 ]; do
	case $1 in
	-b) BUILD=$(cd "$2" && pwd); shift ;;
	-s) SIZE=$2; shift ;;
	-r) REPS=$2; shift ;;
	-t) RUNTIME=$2; shift ;;
	-c) CONFIGS=$2; shift ;;
	*) echo "usage: $0 [-b BUILD] [-s MEMBER_SIZE] [-r REPS] [-t SECONDS] [-c CONFIGS]" >&2; exit 2 ;;
	esac
	shift
done
[[ $REPS =~ ^[1-9][0-9]*$ && $RUNTIME =~ ^[1-9][0-9]*$ ]] || { echo "raid-bench: bad -r/-t" >&2; exit 2; }
MEMBER=$(numfmt --from=iec "$SIZE") || { echo "raid-bench: bad size $SIZE" >&2; exit 2; }
BS=$BUILD/blkstack
# shellcheck source=bench/lib.sh
source "$TOP/bench/lib.sh"
bench_daemon raid-bench

members() { # CONFIG COUNT: creates the member files, prints their paths
	for i in $(seq 0 $(($2 - 1))); do
		truncate -s "$MEMBER" "$W/$1.$i"
		echo "$W/$1.$i"
	done
}

declare -A BYTES
for c in $CONFIGS; do
	case $c in
	striped4 | striped5)
		n=${c#striped}
		mapfile -t m < <(members "$c" "$n")
		tbl="0 $((n * MEMBER / 512)) striped $n 128"
		for f in "${m[@]}"; do tbl+=" $f 0"; done
		$BS dm create "$c" --table "$tbl"
		;;
	raid5 | raid5-journal | raid6 | raid6-journal)
		n=5 level=5 extra=(--consistency-policy resync)
		[ "${c%-journal}" = raid6 ] && n=6 level=6
		[ "${c%-journal}" != "$c" ] && extra=(--consistency-policy journal)
		mapfile -t m < <(members "$c" "$n")
		$BS raid create "$c" --level $level --raid-devices $n --chunk 64K --assume-clean \
			"${extra[@]}" "${m[@]}" >/dev/null
		;;
	*) echo "raid-bench: unknown configuration $c" >&2; exit 2 ;;
	esac
	BYTES[$c]=$(($($BS dm table "$c" | awk '{s += $2} END {print s}') * 512))
done
max=0
for c in $CONFIGS; do [ "${BYTES[$c]}" -gt $max ] && max=${BYTES[$c]}; done
head -c "$max" /dev/urandom >"$W/src"

declare -A RUNS
now_ns() { date +%s%N; }
mbs() { awk -v b="$1" -v ns="$2" 'BEGIN {printf "%.1f", b / (ns / 1e3)}'; }
uri() { echo "nbd+unix:///$1?socket=$W/nbd.sock"; }
seqwrite() {
	head -c "${BYTES[$1]}" "$W/src" >"$W/src.$1"
	sync
	local t0 t1
	t0=$(now_ns)
	nbdcopy --flush "$W/src.$1" "$(uri "$1")"
	t1=$(now_ns)
	rm -f "$W/src.$1"
	mbs "${BYTES[$1]}" $((t1 - t0))
}
seqread() {
	local t0 t1
	t0=$(now_ns)
	nbdcopy "$(uri "$1")" null:
	t1=$(now_ns)
	mbs "${BYTES[$1]}" $((t1 - t0))
}
randwrite() {
	fio --name=rw --ioengine=nbd --uri="$(uri "$1")" --rw=randwrite --bs=4k --iodepth=32 \
		--size="${BYTES[$1]}" --time_based --runtime="$RUNTIME" --ramp_time=1 \
		--randrepeat=0 --norandommap --output-format=json --output="$W/fio.json" >/dev/null
	python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["jobs"][0]["write"]["iops"])' "$W/fio.json"
}

for rep in $(seq "$REPS"); do
	for t in seqwrite seqread randwrite; do
		for c in $CONFIGS; do
			RUNS[$c,$t]+=" $($t "$c")"
		done
	done
	echo "raid-bench: round $rep done" >&2
done
for c in raid5 raid6; do
	[[ " $CONFIGS " == *" $c "* ]] || continue
	$BS raid fail "$c" "$W/$c.1" >/dev/null
	for rep in $(seq "$REPS"); do RUNS[$c,degraded]+=" $(seqread "$c")"; done
done

echo "raid-bench: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $SIZE members, median of $REPS"
printf '%-14s %14s %14s %16s %16s\n' config "seq write MB/s" "seq read MB/s" "4K rand wr IOPS" "degraded rd MB/s"
declare -A MED
for c in $CONFIGS; do
	for t in seqwrite seqread randwrite degraded; do
		MED[$c,$t]=$(echo "${RUNS[$c,$t]:-}" | median)
	done
	printf '%-14s %14s %14s %16s %16s\n' "$c" "${MED[$c,seqwrite]}" "${MED[$c,seqread]}" \
		"${MED[$c,randwrite]}" "${MED[$c,degraded]:--}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100 * a / b}'; }
if [ -n "${MED[striped4,seqwrite]:-}" ]; then
	for c in raid5 raid5-journal raid6 raid6-journal; do
		[ -n "${MED[$c,seqwrite]:-}" ] || continue
		echo "$c seq write: $(ratio "${MED[$c,seqwrite]}" "${MED[striped4,seqwrite]}") of striped4 (goal 80%)"
	done
fi
for c in raid5 raid6; do
	[ -n "${MED[$c,degraded]:-}" ] || continue
	echo "$c degraded read: $(ratio "${MED[$c,degraded]}" "${MED[$c,seqread]}") of healthy (goal 50%)"
done
echo "ceiling (ISA-L alone, one thread):"
"$BUILD/parity_bench" 4 64 1 | sed 's/^/  /'
