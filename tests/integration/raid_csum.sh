#!/bin/bash
# timeout: 300
# The checksum log of parity RAID over plain members (`raid create --checksum-log`, docs/raid.md).
# Without integrity below, md's check sees that a stripe's parity disagrees with its data but
# not which member is wrong; with the log the engine knows, and repairs as over integrity:
#   - the log on disk is what docs/raid.md says (header, and the crc32c of every block, checked
#     by rot.py from the format, not from the C code);
#   - random bytes written into the member files at random places (never two members at the
#     same place): reads through NBD return the data and repair what they meet, the first
#     scrub repairs the rest (repaired_cnt) with mismatch_cnt 0, the second scrub finds
#     nothing, the members match md's layout byte for byte, and the log matches the data;
#   - rot in blocks of zeroes (written as zeroes, or with WRITE_ZEROES) is found too;
#   - a rotten block met by a read-modify-write that falls back to reconstruct-write is
#     counted once;
#   - degraded RAID6 still rebuilds the bad block; degraded RAID5 cannot, and the bad block
#     reads as an error, never as wrong data (without the log it would read wrong);
#   - RAID1 and RAID10 with the log heal the same way;
#   - after unclean stops (kill -9 during writes), with either consistency policy, no block
#     is reported bad, the data is what crashio.py expects, and a scrub is clean.
# RAID_CSUM_SEED=N repeats a run (the seed is logged).
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
ROT="$PY $TOP/tests/integration/helpers/rot.py"
MODEL="$PY $TOP/tests/integration/helpers/mdlayout.py"
SEED=${RAID_CSUM_SEED:-$((RANDOM * 32768 + RANDOM))}
log "seed $SEED"
RANDOM=$SEED
start_daemon


# mkarray NAME LEVEL N [raid create options]: N plain files under an md array with the checksum log, filled with
# random data (NAME.data).  Sets DOFF (member data offset) and DEVSEC (member data sectors).
mkarray() {
	local name=$1 level=$2 n=$3 devs=()
	shift 3
	for i in $(seq 0 $((n - 1))); do
		mkimg 16M "$name$i.img"
		devs+=("$name$i.img")
	done
	$BS raid create "$name" --level "$level" --raid-devices "$n" --chunk 64 --checksum-log \
		"$@" "${devs[@]}" --wait 2>/dev/null
	[ "$(raid_detail "$name" checksum_log)" = on ] || fail "$name: no checksum log"
	head -c $(($($BS dm table "$name" | awk '{print $2}') * 512)) /dev/urandom >"$name.data"
	nbdcopy --flush "$name.data" "$(uri "$name")"
	DOFF=$($BS raid examine "$name""0.img" | sed -n 's/^ *Data Offset : \([0-9]*\) sectors/\1/p')
	DEVSEC=$(raid_detail "$name" used_dev_size)
	[ -n "$DOFF" ] && [ -n "$DEVSEC" ] || fail "$name: no data offset or size"
}

# csumlog NAME N: every member's log (at sector 2056, after the area header) matches its data.
# A flush first: the log reaches the members with every flush.
csumlog() {
	local uuid
	uuid=$(raid_detail "$1" uuid | tr -d ':')
	$PY -c 'import nbd, sys
h = nbd.NBD(); h.set_export_name(sys.argv[2]); h.connect_unix(sys.argv[1]); h.flush(); h.shutdown()' \
		"$NBD_SOCK" "$1" || fail "$1: flush failed"
	$BS dm suspend "$1"
	for i in $(seq 0 $(($2 - 1))); do
		out=$($ROT csumlog "$1$i.img" 2056 "$DOFF" "$DEVSEC" "$uuid") ||
			fail "$1: member $i: the checksum log does not match: $out"
		[ "${out##* }" -gt 0 ] || fail "$1: member $i: no checksum known"
	done
	$BS dm resume "$1"
}

# hit NAME MEMBER SECTOR BYTE NBYTES: random bytes into member file MEMBER at its data-area
# SECTOR (+BYTE); adds the sectors of the 4 KiB blocks that changed to DAMAGED.
hit() {
	local c
	c=$($ROT hit "$1$2.img" $((DOFF + $3)) "$4" "$5" 8) || fail "rot.py hit failed"
	DAMAGED=$((DAMAGED + 8 * c))
}

# degraded_read NAME: reads the array 4 KiB at a time; each block reads right or fails;
# prints how many failed.
degraded_read() {
	$PY - "$NBD_SOCK" "$1" "$1.data" <<'PY'
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
print(bad)
PY
}

# verify NAME N LEVEL LAYOUT: the array reads its data, the members are md's layout exactly.
verify() {
	local name=$1 n=$2 files=()
	nbdcopy "$(uri "$name")" "$name.back" || fail "$name: a read failed"
	cmp -s "$name.data" "$name.back" || fail "$name: wrong data"
	for i in $(seq 0 $((n - 1))); do files+=("$name$i.img"); done
	$BS dm suspend "$name"
	$MODEL check "$3" "$4" 128 "$name.data" "${files[@]}" --offset "$DOFF" \
		--dev-sectors "$DEVSEC" >/dev/null || fail "$name: members differ from md's layout"
	$BS dm resume "$name"
	rm -f "$name.back"
}

# heal NAME N LEVEL LAYOUT: random damage on every member, repaired by reads and one scrub.
heal() {
	local name=$1 n=$2 c0 c1 e0 rep1
	DAMAGED=0
	c0=$(raid_detail "$name" corrected)
	e0=$(raid_detail "$name" checksum_errors)
	while read -r m s b; do
		hit "$name" "$m" "$s" "$b" $((512 + RANDOM % 8192))
	done < <($ROT plan "$RANDOM" 8 64 $((DEVSEC - 64)) "$n" 8704 24)
	log "$name: $DAMAGED sectors in damaged blocks"
	[ "$DAMAGED" -ge 64 ] || fail "$name: too little damage"

	nbdcopy "$(uri "$name")" "$name.back" || fail "$name: a read failed over damaged members"
	cmp -s "$name.data" "$name.back" || fail "$name: a read returned wrong data"
	c1=$(raid_detail "$name" corrected)
	[ $((c1 - c0)) -gt 0 ] || fail "$name: the reads repaired nothing"
	raid_scrub "$name"
	rep1=$REP
	[ "$MM" = 0 ] || fail "$name: the first check counted $MM mismatches"
	[ $((c1 - c0 + REP)) = "$DAMAGED" ] ||
		fail "$name: reads repaired $((c1 - c0)), the check $REP sectors; $DAMAGED were damaged"
	[ "$(raid_detail "$name" checksum_errors)" -gt "$e0" ] || fail "$name: no checksum error counted"
	e0=$(raid_detail "$name" checksum_errors)
	raid_scrub "$name"
	[ "$REP" = 0 ] && [ "$MM" = 0 ] || fail "$name: the second check reported $REP repaired, $MM mismatches"
	[ "$(raid_detail "$name" checksum_errors)" = "$e0" ] || fail "$name: the second check met bad blocks"
	verify "$name" "$n" "$3" "$4"
	csumlog "$name" "$n"
	log "$name: reads repaired $((c1 - c0)) sectors, the check $rep1: ok"
}

# ---- RAID5 ----
mkarray r5 5 4
csumlog r5 4
heal r5 4 5 2
# Zeroed blocks are checked like any other (version 1 of the log recorded 0, "unknown", for
# them).  Stripe 0 (the first 192 KiB: three data chunks) is written with zeroes, stripes 1
# and 2 zeroed with WRITE_ZEROES; then a data block of stripes 0 and 1 rots, and a block of
# stripe 2's parity (zeroes too).  Reads find and repair the data blocks, counting each
# once; the scrub finds the parity block.
$PY - "$NBD_SOCK" r5 <<'PY' || fail "r5: zeroing failed"
import nbd, sys
h = nbd.NBD(); h.set_export_name(sys.argv[2]); h.connect_unix(sys.argv[1])
h.pwrite(bytes(196608), 0)
h.zero(2 * 196608, 196608)
h.flush()
h.shutdown()
PY
dd if=/dev/zero of=r5.data bs=192K count=3 conv=notrunc status=none
read -r d0 < <($ROT roles 5 2 4 0 | awk '{print $2}')
read -r d1 < <($ROT roles 5 2 4 1 | awk '{print $3}')
read -r p2 < <($ROT roles 5 2 4 2 | awk '{print $6}')
c0=$(raid_detail r5 corrected)
e0=$(raid_detail r5 checksum_errors)
DAMAGED=0
hit r5 "$d0" 8 0 4096
hit r5 "$d1" 136 0 4096
hit r5 "$p2" 272 0 4096
[ "$DAMAGED" = 24 ] || fail "test broken: $DAMAGED sectors damaged, not 24"
nbdcopy "$(uri r5)" r5.back || fail "r5: a read failed over rotten zero blocks"
cmp -s r5.data r5.back || fail "r5: rot in a zeroed block was returned as data"
rm -f r5.back
[ $(($(raid_detail r5 checksum_errors) - e0)) = 2 ] ||
	fail "r5: reads counted $(($(raid_detail r5 checksum_errors) - e0)) checksum errors for 2 rotten zero blocks"
[ $(($(raid_detail r5 corrected) - c0)) = 16 ] ||
	fail "r5: reads repaired $(($(raid_detail r5 corrected) - c0)) sectors for 16 rotten"
raid_scrub r5
[ "$REP" = 8 ] && [ "$MM" = 0 ] || fail "r5: the check after zero-block rot: $REP repaired (not 8), $MM mismatches"
[ $(($(raid_detail r5 checksum_errors) - e0)) = 3 ] ||
	fail "r5: $(($(raid_detail r5 checksum_errors) - e0)) checksum errors for 3 rotten zero blocks"
verify r5 4 5 2
csumlog r5 4
log "r5: rot in zeroed blocks found and repaired, each counted once: ok"
# Degraded: member 3 failed, then a block of member 0 rots.  The stripe has no redundancy
# left, so that block is lost: it must read as an error (the log knows it is bad).
$BS raid fail r5 r53.img
DAMAGED=0
hit r5 0 2000 0 4096
bad=$(degraded_read r5) || fail "r5: degraded reads: $bad"
[ "$bad" = 1 ] || fail "r5: $bad blocks failed degraded reads, not 1"
grep -q "r5: [^ ]*r50.img: 1 block(s) from sector 2000 do not match the checksum log" "$T/daemon.log" ||
	fail "r5: the bad block was not logged with its member and sector"
log "r5 degraded: the bad block reads as an error: ok"
$BS raid stop r5

# A write across two chunks of a 5-member RAID5 (two reads and the parity's against four)
# takes read-modify-write.  When the old data it reads has rotted, it falls back to
# reconstruct-write, which reads that block again with the rest of the stripe: still one
# checksum error, not two.  Stripe 3: the last 4 KiB of its first data chunk rots, then 8 KiB
# are written over that block and the first 4 KiB of the next chunk.
mkarray r5w 5 5
read -r d0 < <($ROT roles 5 2 5 3 | awk '{print $2}')
e0=$(raid_detail r5w checksum_errors)
DAMAGED=0
hit r5w "$d0" $((3 * 128 + 120)) 0 4096
[ "$DAMAGED" = 8 ] || fail "test broken: $DAMAGED sectors damaged, not 8"
head -c 8192 /dev/urandom >r5w.new
dd if=r5w.new of=r5w.data bs=4096 seek=$(((3 * 262144 + 61440) / 4096)) conv=notrunc \
	status=none
$PY - "$NBD_SOCK" r5w r5w.new $((3 * 262144 + 61440)) <<'PY' || fail "r5w: the write failed"
import nbd, sys
h = nbd.NBD(); h.set_export_name(sys.argv[2]); h.connect_unix(sys.argv[1])
h.pwrite(open(sys.argv[3], "rb").read(), int(sys.argv[4]))
h.flush()
h.shutdown()
PY
[ $(($(raid_detail r5w checksum_errors) - e0)) = 1 ] ||
	fail "r5w: $(($(raid_detail r5w checksum_errors) - e0)) checksum errors for 1 rotten block"
verify r5w 5 5 2
raid_scrub r5w
[ "$REP" = 0 ] && [ "$MM" = 0 ] || fail "r5w: the check after the write: $REP repaired, $MM mismatches"
csumlog r5w 5
log "r5w: a rotten block met by read-modify-write is counted once: ok"
$BS raid stop r5w

# ---- RAID6, then degraded RAID6 ----
mkarray r6 6 5
heal r6 5 6 2
$BS raid fail r6 r64.img
c0=$(raid_detail r6 corrected)
DAMAGED=0
# Two data members of stripe 15 (member sectors 1920-2047), at different places.
read -r d0 d1 < <($ROT roles 6 2 5 15 | awk '{print $2, $3}')
hit r6 "$d0" 1960 0 4096
hit r6 "$d1" 2000 100 4096
bad=$(degraded_read r6) || fail "r6: degraded reads: $bad"
[ "$bad" = 0 ] || fail "r6: $bad blocks failed degraded reads"
[ $(($(raid_detail r6 corrected) - c0)) = "$DAMAGED" ] || fail "r6: degraded reads did not repair $DAMAGED sectors"
raid_scrub r6
[ "$REP" = 0 ] && [ "$MM" = 0 ] || fail "r6: a degraded check reported $REP repaired, $MM mismatches"
verify r6 5 6 2
log "r6 degraded: ok"
$BS raid stop r6

# ---- RAID1 and RAID10: the log says which copy is right ----
mkarray m1 1 2
heal m1 2 1 0
$BS raid stop m1
mkarray r10 10 4 --layout n2
heal r10 4 10 near:2
$BS raid stop r10

# ---- unclean stops: the log never turns a crash into false checksum errors ----
# The daemon is killed during random writes with flushes; the checksums of blocks written
# since the last flush may be stale on disk, and the array must forget them (regions the
# bitmap marks dirty) or have them rewritten (journal replay), not report the blocks bad.
IO="$PY $TOP/tests/integration/helpers/crashio.py"
crash() { # NAME POLICY
	local name=$1 devs=() size writer
	for i in 0 1 2; do
		mkimg 16M "$name$i.img"
		devs+=("$name$i.img")
	done
	$BS raid create "$name" --level 5 --raid-devices 3 --chunk 64 --checksum-log \
		--consistency-policy "$2" "${devs[@]}" --wait 2>/dev/null
	size=$(($($BS dm table "$name" | awk '{print $2}') * 512))
	DOFF=$($BS raid examine "$name""0.img" | sed -n 's/^ *Data Offset : \([0-9]*\) sectors/\1/p')
	DEVSEC=$(raid_detail "$name" used_dev_size)
	for it in 1 2 3; do
		$IO write "$(uri "$name")" "$name.state" "$size" 30 "$RANDOM" >/dev/null 2>&1 &
		writer=$!
		sleep "$((1 + RANDOM % 2)).$((RANDOM % 10))"
		kill_daemon
		wait "$writer" 2>/dev/null || true
		start_daemon
		$BS raid assemble "$name" "${devs[@]}" 2>assemble.err ||
			fail "$name: assemble after a crash: $(cat assemble.err)"
		$IO verify "$(uri "$name")" "$name.state" "$size" >verify.out ||
			fail "$name: data lost after a crash: $(tail -3 verify.out)"
		[ "$(raid_detail "$name" checksum_errors)" = 0 ] ||
			fail "$name: $(raid_detail "$name" checksum_errors) false checksum errors after crash $it"
	done
	$BS raid wait "$name"
	raid_scrub "$name"
	[ "$REP" = 0 ] && [ "$MM" = 0 ] || fail "$name: check after crashes: $REP repaired, $MM mismatches"
	[ "$(raid_detail "$name" checksum_errors)" = 0 ] || fail "$name: false checksum errors in the check"
	csumlog "$name" 3
	log "$name: 3 unclean stops ($2): ok"
	$BS raid stop "$name"
}
crash cj journal
crash cr resync

stop_daemon
log ok
