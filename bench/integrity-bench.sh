#!/bin/bash
# integrity-bench.sh - the write cost of the integrity target against linear on the same file.
#
# One host file per configuration (default 1 GiB each), formatted with `blkstack integrity
# format` (untimed), all served at once by one blkstackd over a unix NBD socket:
#   linear                      `linear` over a file (as many sectors as crc32c provides)
#   crc32c-J, crc32c-B          crc32c tags, journal and bitmap mode
#   crc32c-D                    crc32c, direct mode (no crash consistency; for reference)
#   hmac-J, hmac-B              hmac-sha256 tags (32-byte key), journal and bitmap mode
#   luks2                       LUKS2 aes-xts-plain64 (`blkstack luks format`, 512-byte sectors)
#   luks2-hmac                  the same with --integrity hmac-sha256 (crypt over integrity)
#   luks2-aead                  --cipher aes-gcm-random --integrity aead
# Each run is `nbdcopy --flush SRC URI` of the whole device (sequential writes, nbdcopy's
# default connections and request size; --flush so that what is measured ends durable, -n
# to leave it out), MB/s = bytes / wall time.  The configurations take turns, run by run,
# so that the load of a shared machine falls on all of them alike; the median of --reps
# runs is reported.  Files and the source are in the page cache, and every file is synced
# (untimed) before every run.  The cost of a configuration is 1 - its MB/s / linear's; the
# cost of the LUKS2 --integrity configurations is against luks2.
#   bench/integrity-bench.sh [-b BUILD] [-s SIZE] [-r REPS] [-n] [-c "CONFIGS"]
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$TOP/build
SIZE=1G
REPS=5
FLUSH=--flush
CONFIGS="linear crc32c-J crc32c-B crc32c-D hmac-J hmac-B luks2 luks2-hmac luks2-aead"
while [ $# -gt 0 ]; do
	case $1 in
	-b) BUILD=$(cd "$2" && pwd); shift ;;
	-s) SIZE=$2; shift ;;
	-r) REPS=$2; shift ;;
	-n) FLUSH= ;;
	-c) CONFIGS=$2; shift ;;
	*) echo "usage: $0 [-b BUILD] [-s SIZE] [-r REPS] [-n] [-c CONFIGS]" >&2; exit 2 ;;
	esac
	shift
done
BS=$BUILD/blkstack
# shellcheck source=bench/lib.sh
source "$TOP/bench/lib.sh"
bench_daemon integrity-bench
head -c 32 /dev/urandom >"$W/key"
head -c "$SIZE" /dev/urandom >"$W/random"

declare -A BYTES RUNS
for c in $CONFIGS; do
	img=$W/$c.img
	truncate -s "$SIZE" "$img"
	[[ $c != luks2* ]] || truncate -s +16M "$img" # the LUKS2 header area in front
	alg=crc32c
	mode=
	key=
	case $c in hmac-*) alg=hmac-sha256 key="--integrity-key-file $W/key" ;; esac
	case $c in
	*-B) mode=--integrity-bitmap-mode ;;
	*-D) mode=--integrity-no-journal ;;
	esac
	case $c in
	luks2*)
		printf 'bench' >"$W/pass"
		opts=(--sector-size 512 --key-file "$W/pass" --pbkdf-force-iterations 1000 --pbkdf pbkdf2)
		case $c in
		luks2-hmac) opts+=(--integrity hmac-sha256) ;;
		luks2-aead) opts+=(--cipher aes-gcm-random --integrity aead) ;;
		esac
		$BS luks format -q "${opts[@]}" "$img"
		$BS luks open --key-file "$W/pass" "$img" "$c"
		;;
	*)
		# shellcheck disable=SC2086
		$BS integrity format -q --integrity $alg $key "$img"
		;;
	esac
	if [[ $c == luks2* ]]; then
		:
	elif [ "$c" = linear ]; then
		sectors=$(sed -n 's/^provided_data_sectors //p' <($BS integrity dump "$img"))
		$BS dm create "$c" --table "0 $sectors linear $img 0"
	else
		# shellcheck disable=SC2086
		$BS integrity open "$img" "$c" --integrity $alg $key $mode
	fi
	BYTES[$c]=$(($($BS dm table "$c" | awk '{print $2}') * 512))
	head -c "${BYTES[$c]}" "$W/random" >"$W/$c.src"
	RUNS[$c]=
done
cat "$W"/*.src "$W"/*.img >/dev/null
for rep in $(seq "$REPS"); do
	for c in $CONFIGS; do
		sync "$W/$c.img"
		t0=$(date +%s.%N)
		# shellcheck disable=SC2086
		nbdcopy $FLUSH "$W/$c.src" "nbd+unix:///$c?socket=$W/nbd.sock"
		t1=$(date +%s.%N)
		RUNS[$c]+=" $(echo "${BYTES[$c]} / ($t1 - $t0) / 1000000" | bc -l)"
	done
	echo "round $rep done" >&2
done

declare -A MED
echo "sequential write, nbdcopy ${FLUSH:-without --flush}, $SIZE files, median of $REPS:"
for c in $CONFIGS; do
	MED[$c]=$(echo "${RUNS[$c]}" | median)
	printf '  %-10s %6.0f MB/s   (runs:%s)\n' "$c" "${MED[$c]}" \
		"$(for v in ${RUNS[$c]}; do printf ' %.0f' "$v"; done)"
done
if [ -n "${MED[linear]:-}" ]; then
	echo "cost against linear (1 - MB/s / linear's):"
	for c in $CONFIGS; do
		[ "$c" = linear ] || [[ $c == luks2* ]] && continue
		printf '  %-10s %5.1f%%\n' "$c" "$(echo "(1 - ${MED[$c]} / ${MED[linear]}) * 100" | bc -l)"
	done
fi
if [ -n "${MED[luks2]:-}" ]; then
	echo "cost of --integrity against luks2 (1 - MB/s / luks2's):"
	for c in luks2-hmac luks2-aead; do
		[ -n "${MED[$c]:-}" ] || continue
		printf '  %-10s %5.1f%%\n' "$c" "$(echo "(1 - ${MED[$c]} / ${MED[luks2]}) * 100" | bc -l)"
	done
fi
