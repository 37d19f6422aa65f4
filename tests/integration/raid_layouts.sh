#!/bin/bash
# timeout: 400
# Every dm-raid type: data written over NBD lands on the member files exactly where md
# puts it (checked by an independent model, tests/integration/helpers/mdlayout.py, which
# also recomputes P and Q), and reads back intact with one (RAID6: two) members missing.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
MODEL="$PY $TOP/tests/integration/helpers/mdlayout.py"
MEMBER_MB=4
CHUNK=128 # sectors
MS=$((MEMBER_MB * 2048))
start_daemon

# type level md_layout members data_disks
cases=(
	"raid0 0 0 3 3"
	"raid1 1 0 3 1"
	"raid4 5 4 3 2"
	"raid4_n 4 5 3 2"
	"raid5_0 5 4 4 3"
	"raid5_n 5 5 4 3"
	"raid5_la 5 0 4 3"
	"raid5_ra 5 1 4 3"
	"raid5_ls 5 2 4 3"
	"raid5_rs 5 3 5 4"
	"raid6_zr 6 8 5 3"
	"raid6_nr 6 9 5 3"
	"raid6_nc 6 10 5 3"
	"raid6_la_6 6 16 5 3"
	"raid6_ra_6 6 17 5 3"
	"raid6_ls_6 6 18 6 4"
	"raid6_rs_6 6 19 5 3"
	"raid6_0_6 6 20 5 3"
	"raid6_n_6 6 5 5 3"
)
for c in "${cases[@]}"; do
	read -r type level layout n dd <<<"$c"
	files=()
	pairs=""
	for i in $(seq 0 $((n - 1))); do
		mkimg ${MEMBER_MB}M "$type.$i"
		files+=("$T/$type.$i")
		pairs+=" - $T/$type.$i"
	done
	case $level in
	1) len=$MS ;;
	*) len=$((MS / CHUNK * CHUNK * dd)) ;;
	esac
	$BS dm create "$type" --table "0 $len raid $type 2 $CHUNK nosync $n$pairs"
	head -c $((len * 512)) /dev/urandom >"$type.data"
	nbdcopy "$type.data" "$(uri "$type")"
	$BS dm suspend "$type" # flush and quiesce before reading the members
	$MODEL check "$level" "$layout" "$CHUNK" "$type.data" "${files[@]}" ||
		fail "$type: member placement or parity differs from md's"
	$BS dm resume "$type"

	if [ "$level" != 0 ]; then
		# Degraded: member 1 missing (RAID6: members 1 and 3), read everything back.
		missing="1"
		[ "$level" = 6 ] && missing="1 3"
		dpairs=""
		for i in $(seq 0 $((n - 1))); do
			if [[ " $missing " == *" $i "* ]]; then dpairs+=" - -"; else dpairs+=" - $T/$type.$i"; fi
		done
		$BS dm reload "$type" --table "0 $len raid $type 2 $CHUNK nosync $n$dpairs"
		$BS dm resume "$type"
		$BS dm status "$type" | grep -q " $n [AD-]*-" || fail "$type: missing member not shown"
		nbdcopy "$(uri "$type")" "$type.back"
		cmp "$type.data" "$type.back" || fail "$type: degraded read differs"
	fi
	$BS dm remove "$type"
	rm -f "$type".*
	log "$type ok"
done

# RAID10 near, far and offset (dm-raid uses far sets for far and offset).
for fmt in near far offset; do
	n=4
	files=()
	pairs=""
	for i in $(seq 0 $((n - 1))); do
		mkimg ${MEMBER_MB}M "r10$fmt.$i"
		files+=("$T/r10$fmt.$i")
		pairs+=" - $T/r10$fmt.$i"
	done
	len=$((MS * n / 2 / CHUNK * CHUNK))
	$BS dm create "r10$fmt" --table "0 $len raid raid10 6 $CHUNK nosync raid10_format $fmt raid10_copies 2 $n$pairs"
	head -c $((len * 512)) /dev/urandom >"r10$fmt.data"
	nbdcopy "r10$fmt.data" "$(uri "r10$fmt")"
	$BS dm suspend "r10$fmt"
	spec="$fmt:2"
	[ "$fmt" != near ] && spec="$fmt:2:farsets"
	$MODEL check 10 "$spec" "$CHUNK" "r10$fmt.data" "${files[@]}" --dev-sectors $((len * 2 / n)) ||
		fail "raid10 $fmt: placement differs from md's"
	$BS dm resume "r10$fmt"
	$BS dm reload "r10$fmt" --table "0 $len raid raid10 6 $CHUNK nosync raid10_format $fmt raid10_copies 2 $n - ${files[0]} - - - ${files[2]} - ${files[3]}"
	$BS dm resume "r10$fmt"
	nbdcopy "$(uri "r10$fmt")" "r10$fmt.back"
	cmp "r10$fmt.data" "r10$fmt.back" || fail "raid10 $fmt: degraded read differs"
	$BS dm remove "r10$fmt"
	rm -f "r10$fmt".*
	log "raid10 $fmt ok"
done
stop_daemon
log ok
