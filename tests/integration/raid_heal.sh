#!/bin/bash
# timeout: 300
# Self-healing RAID over dm-integrity members (issue 5).  Random bytes are written straight
# into the members' backing files, in their data areas, while the arrays run; the integrity
# targets turn the damage into EILSEQ and the RAID engine must hide and repair it:
#   - RAID1, the scenario of the issue: 30 KiB of /dev/urandom dd'ed into one member of a
#     mirrored pair; the first `raid check` repairs exactly the damaged sectors and says so
#     (repaired_cnt), the second finds nothing, and both members hold the data again;
#   - RAID1, RAID5, RAID6, RAID10 (near, far, offset): damage at random places on random
#     members (never two members at the same place, but for RAID6 one double hit), plus two
#     members of the same stripe/region damaged at different sectors (each read of the range
#     fails on both: repaired unit by unit); reads through NBD return the data, reads and the first scrub
#     together repair exactly the damaged sectors (counters), the second scrub is clean and
#     reads no bad sector, every member matches md's layout byte for byte (parity included);
#   - a scrub and a rewrite of the whole array at the same time over fresh damage: the new
#     data wins everywhere, the members agree;
#   - degraded: RAID6 with a member failed repairs the same way; RAID5 with a member failed
#     cannot, and the lost block reads as an error, never as wrong data.
# RAID_HEAL_SEED=N repeats a run (the seed is logged).
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
ROT="$PY $TOP/tests/integration/helpers/rot.py"
MODEL="$PY $TOP/tests/integration/helpers/mdlayout.py"
SEED=${RAID_HEAL_SEED:-$((RANDOM * 32768 + RANDOM))}
log "seed $SEED"
RANDOM=$SEED
start_daemon

imis() { $BS dm status "$1" | awk '{print $4}'; } # mismatches an integrity device counted

# mkarray NAME LEVEL N [raid create options]: N integrity files (default journal mode)
# under an md array; fills it with random data (NAME.data).  Sets DOFF (member data offset,
# sectors) and DEVSEC (member data sectors used).
mkarray() {
	local name=$1 level=$2 n=$3 devs=()
	shift 3
	for i in $(seq 0 $((n - 1))); do
		mkimg 16M "$name$i.img"
		$BS integrity format -q "$name$i.img"
		$BS integrity open "$name$i.img" "$name-i$i"
		devs+=("/dev/mapper/$name-i$i")
	done
	$BS raid create "$name" --level "$level" --raid-devices "$n" --chunk 64 "$@" "${devs[@]}" \
		--wait 2>/dev/null
	head -c $(($($BS dm table "$name" | awk '{print $2}') * 512)) /dev/urandom >"$name.data"
	nbdcopy --flush "$name.data" "$(uri "$name")"
	# Journal mode keeps fresh writes in its journal for a while: drain it, so the damage
	# below hits the only copy of each block.
	for i in $(seq 0 $((n - 1))); do
		$BS dm suspend "$name-i$i"
		$BS dm resume "$name-i$i"
	done
	DOFF=$($BS raid examine "/dev/mapper/$name-i0" | sed -n 's/^ *Data Offset : \([0-9]*\) sectors/\1/p')
	DEVSEC=$(raid_detail "$name" used_dev_size)
	[ -n "$DOFF" ] && [ -n "$DEVSEC" ] || fail "$name: no data offset or size"
}

# hit NAME MEMBER SECTOR BYTE NBYTES: random bytes into member MEMBER's file at its data-area
# SECTOR (+BYTE); adds the sectors that changed to DAMAGED.  Returns 1 if the range would
# cross an integrity interleave area (nothing written).
hit() {
	local c rc=0
	c=$($ROT hit "$1$2.img" $((DOFF + $3)) "$4" "$5" 1 --integrity) || rc=$?
	[ $rc -eq 3 ] && return 1
	[ $rc -eq 0 ] || fail "rot.py hit failed"
	DAMAGED=$((DAMAGED + c))
}

mismatches() { # NAME N: the sum of the members' integrity mismatch counters
	local s=0
	for i in $(seq 0 $(($2 - 1))); do s=$((s + $(imis "$1-i$i"))); done
	echo $s
}

# verify NAME N MODEL_LEVEL MODEL_LAYOUT: the array reads its data, and every member's
# data area (read through its integrity device) is what md's layout says, parity included.
verify() {
	local name=$1 n=$2 files=()
	nbdcopy "$(uri "$name")" "$name.back" || fail "$name: a read failed"
	cmp -s "$name.data" "$name.back" || fail "$name: wrong data"
	for i in $(seq 0 $((n - 1))); do
		nbdcopy "$(uri "$name-i$i")" "$name$i.dev" || fail "$name: member $i does not read"
		files+=("$name$i.dev")
	done
	$MODEL check "$3" "$4" 128 "$name.data" "${files[@]}" --offset "$DOFF" \
		--dev-sectors "$DEVSEC" >/dev/null ||
		fail "$name: members differ from md's layout"
	rm -f "$name.back" "${files[@]}"
}

# ---- the issue's scenario: 30 KiB of random bytes in one member of a mirrored pair ----
mkarray m1 1 2
s=$((RANDOM % (DEVSEC - 128)))
off=$($PY "$TOP/tests/integration/helpers/integrity_check.py" dataoff m11.img $((DOFF + s)))
off=$((off + RANDOM % 512))
dd if=m11.img of=before bs=30720 count=1 skip="$off" iflag=skip_bytes status=none
dd if=/dev/urandom of=m11.img bs=30720 count=1 seek="$off" oflag=seek_bytes conv=notrunc status=none
dd if=m11.img of=after bs=30720 count=1 skip="$off" iflag=skip_bytes status=none
want=$({ cmp -l before after || true; } | awk -v o=$((off % 512)) '{print int(($1 - 1 + o) / 512)}' | sort -u | wc -l)
[ "$want" -ge 60 ] || fail "m1: the damage changed only $want sectors"
log "m1: 30 KiB at byte $off of m11.img (member sector $s): $want sectors damaged"
raid_scrub m1
[ "$REP" = "$want" ] || fail "m1: the first check repaired $REP sectors, not $want"
[ "$MM" = 0 ] || fail "m1: the first check counted $MM mismatches"
# Logged per scrub window, with the member: the lines add up to the damage.
logged=$(sed -n 's|.*m1: repaired \([0-9]*\) bad sectors in .* on /dev/mapper/m1-i1 from another copy$|\1|p' \
	"$T/daemon.log" | awk '{s += $1} END {print s + 0}')
[ "$logged" = "$want" ] || fail "m1: the log names $logged repaired sectors on m1-i1, not $want"
before=$(mismatches m1 2)
raid_scrub m1
[ "$REP" = 0 ] && [ "$MM" = 0 ] || fail "m1: the second check reported $REP repaired, $MM mismatches"
[ "$(mismatches m1 2)" = "$before" ] || fail "m1: the second check met integrity errors"
[ "$(raid_detail m1 corrected)" = "$want" ] || fail "m1: corrected is $(raid_detail m1 corrected), not $want"
verify m1 2 1 0
log "m1: ok"

# ---- random damage on every level ----
# heal NAME N MODEL_LEVEL MODEL_LAYOUT PAIR_A PAIR_B [DOUBLE_A DOUBLE_B]
#   PAIR_A/PAIR_B: two members that hold the same stripe or copies of the same region at
#   member sector 256..383: damaged at different sectors there.  DOUBLE_*: two members damaged
#   at the same sectors (RAID6 only).
heal() {
	local name=$1 n=$2 c0 c1 before rep1 map
	# HEAL_MAP: the members random damage may hit (default all; see RAID10 far/offset below).
	read -r -a map <<<"${HEAL_MAP:-$(seq -s ' ' 0 $((${HEAL_MEMBERS:-$n} - 1)))}"
	DAMAGED=0
	c0=$(raid_detail "$name" corrected)
	if [ "$5" != - ]; then
		hit "$name" "$5" $((256 + RANDOM % 16)) $((RANDOM % 512)) 4096
		hit "$name" "$6" $((320 + RANDOM % 16)) $((RANDOM % 512)) 4096
	fi
	if [ $# -ge 8 ]; then
		hit "$name" "$7" 640 100 6000
		hit "$name" "$8" 640 300 6000
	fi
	while read -r m s b; do
		hit "$name" "${map[$m]}" "$s" "$b" $((512 + RANDOM % 8192)) || true
	done < <($ROT plan "$RANDOM" 8 1024 $((DEVSEC - 64)) "${#map[@]}" 8704)
	log "$name: $DAMAGED sectors damaged"
	[ "$DAMAGED" -ge 30 ] || fail "$name: too little damage"

	nbdcopy "$(uri "$name")" "$name.back" || fail "$name: a read failed over damaged members"
	cmp -s "$name.data" "$name.back" || fail "$name: a read returned wrong data"
	c1=$(raid_detail "$name" corrected)
	[ $((c1 - c0)) -gt 0 ] || fail "$name: the reads repaired nothing"
	raid_scrub "$name"
	rep1=$REP
	[ "$MM" = 0 ] || fail "$name: the first check counted $MM mismatches"
	[ $((c1 - c0 + REP)) = "$DAMAGED" ] ||
		fail "$name: reads repaired $((c1 - c0)), the check $REP sectors; $DAMAGED were damaged"
	[ "$(raid_detail "$name" corrected)" = $((c0 + DAMAGED)) ] || fail "$name: corrected counter"
	before=$(mismatches "$name" "$n")
	raid_scrub "$name"
	[ "$REP" = 0 ] && [ "$MM" = 0 ] || fail "$name: the second check reported $REP repaired, $MM mismatches"
	[ "$(mismatches "$name" "$n")" = "$before" ] || fail "$name: the second check met integrity errors"
	verify "$name" "$n" "$3" "$4"
	[ "$(raid_detail "$name" failed_devices)" = "${HEAL_FAILED:-0}" ] || fail "$name: a member was failed"
	log "$name: reads repaired $((c1 - c0)) sectors, the check $rep1: ok"
}

# race NAME N MODEL_LEVEL MODEL_LAYOUT: fresh damage, then a scrub and a rewrite of the whole
# array run at the same time.  Repairs must never put old data over new writes: afterwards
# the array reads the new data, a scrub finds nothing, and the members are md's layout.
race() {
	local name=$1 n=$2 i
	DAMAGED=0
	while read -r m s b; do
		hit "$name" "$m" "$s" "$b" $((512 + RANDOM % 8192)) || true
	done < <($ROT plan "$RANDOM" 12 64 $((DEVSEC - 64)) "$n" 8704)
	$BS raid check "$name"
	# New data over the whole array, again and again until the scrub is over.
	for i in $(seq 20); do
		head -c "$(stat -c %s "$name.data")" /dev/urandom >"$name.data"
		nbdcopy --flush "$name.data" "$(uri "$name")" || fail "$name: a write failed during a scrub"
		[ "$(raid_detail "$name" sync_action)" = idle ] && [ "$(raid_detail "$name" sync_pending)" = no ] && break
	done
	$BS raid wait "$name"
	raid_scrub "$name"
	[ "$MM" = 0 ] || fail "$name: $MM mismatches after writes during a scrub"
	[ "$REP" = 0 ] || fail "$name: $REP sectors still bad after the rewrite"
	verify "$name" "$n" "$3" "$4"
	log "$name: $i rewrites during a scrub: ok"
}

heal m1 2 1 0 0 1
race m1 2 1 0
$BS raid stop m1

mkarray r5 5 4
heal r5 4 5 2 0 1
race r5 4 5 2
# Degraded RAID5 and one more bad block: that block is lost, and it must read as an error,
# never as wrong data; everything else reads right, and a scrub goes past it.
$BS raid fail r5 /dev/mapper/r5-i3
DAMAGED=0
hit r5 0 2000 0 4096
$PY - "$NBD_SOCK" r5 r5.data <<'PY' || fail "r5: degraded reads"
import nbd, sys
h = nbd.NBD(); h.set_export_name(sys.argv[2]); h.connect_unix(sys.argv[1])
data = open(sys.argv[3], "rb").read()
bad = 0
for off in range(0, len(data), 4096):
    try:
        if h.pread(4096, off) != data[off:off + 4096]:
            sys.exit("wrong data at byte %d" % off)
    except nbd.Error:
        bad += 1
h.shutdown()
if not 1 <= bad <= 2:
    sys.exit("%d blocks failed, not 1 or 2" % bad)
PY
raid_scrub r5
[ "$REP" = 0 ] && [ "$MM" = 0 ] || fail "r5: a degraded check reported $REP repaired, $MM mismatches"
grep -q "r5: check: sectors .* are unreadable" "$T/daemon.log" || fail "r5: the lost block was not logged"
log "r5 degraded: the lost block reads as an error: ok"
$BS raid stop r5

mkarray r6 6 5
heal r6 5 6 2 0 1 2 3
# Degraded: with member 4 failed, RAID6 still rebuilds one bad member at each place.
$BS raid fail r6 /dev/mapper/r6-i4
HEAL_MEMBERS=4 HEAL_FAILED=1 heal r6 5 6 2 - -
$BS raid stop r6

mkarray r10 10 4 --layout n2
heal r10 4 10 near:2 0 1
race r10 4 10 near:2
$BS raid stop r10

# Far and offset copies lie at other member sectors, on the next member: damage on members
# 0 and 2 only never hits both copies of anything (rot.py plan spaces places per sector).
for fmt in far offset; do
	mkarray "r10${fmt:0:1}" 10 4 --layout "${fmt:0:1}2"
	HEAL_MAP="0 2" heal "r10${fmt:0:1}" 4 10 "$fmt:2" 0 2
	$BS raid stop "r10${fmt:0:1}"
done

stop_daemon
log ok
