#!/bin/bash
# timeout: 300
# RAID under member faults, with the dm raid target: members that return I/O errors are
# dropped and the array keeps serving correct data; one failure too many fails the array
# cleanly (errors, no garbage), the dead members marked faulty even though the error target
# takes flushes (as Linux's does); a replaced member is rebuilt to exactly md's layout.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
MODEL="$PY $TOP/tests/integration/helpers/mdlayout.py"
CHUNK=128
mkimg 8M m0 m1 m2 m3 m4 new1
start_daemon

# Each member sits behind a linear device we can later swap for `error`.
for i in 0 1 2 3 4; do
	$BS dm create "leg$i" --table "0 16384 linear $T/m$i 0"
done
wait_idle() { # device
	for _ in $(seq 600); do
		st=$($BS dm status "$1")
		case "$st" in *" idle "*) [[ "$st" != *" a"* && "$st" != *"a "* ]] && return 0 ;; esac
		sleep 0.1
	done
	fail "$1 did not become idle: $st"
}
read_ok() { nbdcopy "$(uri "$1")" "$1.back" && cmp "$2" "$1.back"; }

# ---- RAID5: one failure served degraded, a second fails the array ----
LEN=$((16384 / CHUNK * CHUNK * 2))
$BS dm create r5 --table "0 $LEN raid raid5_ls 1 $CHUNK 3 - /dev/mapper/leg0 - /dev/mapper/leg1 - /dev/mapper/leg2"
wait_idle r5
head -c $((LEN * 512)) /dev/urandom >r5.data
nbdcopy r5.data "$(uri r5)"
$BS dm reload leg1 --table "0 16384 error"
$BS dm resume leg1
read_ok r5 r5.data || fail "raid5: reads wrong after a member started failing"
$BS dm status r5 | grep -q ' 3 ADA ' || fail "raid5: failed member not shown as D: $($BS dm status r5)"
# writes go on degraded
head -c 1048576 /dev/urandom >patch
dd if=patch of=r5.data bs=1M seek=2 conv=notrunc status=none
nbdcopy r5.data "$(uri r5)"
read_ok r5 r5.data || fail "raid5: degraded writes did not read back"
# second failure: I/O errors, never wrong data
$BS dm reload leg2 --table "0 16384 error"
$BS dm resume leg2
if nbdcopy "$(uri r5)" r5.back 2>/dev/null; then fail "raid5: reads succeeded with two members gone"; fi
$PY - "$NBD_SOCK" <<'PY' || fail "raid5: a failed array did not return EIO"
import nbd, sys
h = nbd.NBD(); h.set_export_name("r5"); h.connect_unix(sys.argv[1])
try:
    h.pread(4096, 0)
    sys.exit(1)
except nbd.Error as e:
    sys.exit(0 if e.errno in (5, "EIO") else 2)
PY
# (the error target takes flushes, as Linux's does: the array learnt of the second dead
# member from the read errors it could not recover, by probing it)
grep -q "leg2 (role 2) marked faulty: a read error nothing could recover" "$T/daemon.log" ||
	fail "raid5: the second dead member was not marked faulty"
$BS dm remove r5

# ---- rebuild: member 1 replaced by an empty file, rebuilt, layout and parity exact ----
for i in 0 1 2; do $BS dm reload "leg$i" --table "0 16384 linear $T/m$i 0"; $BS dm resume "leg$i"; done
$BS dm create r5b --table "0 $LEN raid raid5_ls 1 $CHUNK 3 - /dev/mapper/leg0 - /dev/mapper/leg1 - /dev/mapper/leg2"
wait_idle r5b
head -c $((LEN * 512)) /dev/urandom >r5b.data
nbdcopy r5b.data "$(uri r5b)"
$BS dm reload r5b --table "0 $LEN raid raid5_ls 3 $CHUNK rebuild 1 3 - /dev/mapper/leg0 - $T/new1 - /dev/mapper/leg2"
$BS dm resume r5b
wait_idle r5b
$BS dm suspend r5b
$MODEL check 5 2 $CHUNK r5b.data "$T/m0" "$T/new1" "$T/m2" || fail "rebuilt member differs from md's layout"
$BS dm resume r5b
$BS dm remove r5b

# ---- RAID6: two failures served, a third fails the array ----
for i in 0 1 2 3 4; do $BS dm reload "leg$i" --table "0 16384 linear $T/m$i 0"; $BS dm resume "leg$i"; done
LEN6=$((16384 / CHUNK * CHUNK * 3))
$BS dm create r6 --table "0 $LEN6 raid raid6_zr 1 $CHUNK 5 - /dev/mapper/leg0 - /dev/mapper/leg1 - /dev/mapper/leg2 - /dev/mapper/leg3 - /dev/mapper/leg4"
wait_idle r6
head -c $((LEN6 * 512)) /dev/urandom >r6.data
nbdcopy r6.data "$(uri r6)"
for i in 0 3; do $BS dm reload "leg$i" --table "0 16384 error"; $BS dm resume "leg$i"; done
read_ok r6 r6.data || fail "raid6: reads wrong with two members failing"
$BS dm status r6 | grep -q ' 5 DAADA ' || fail "raid6: failed members not shown: $($BS dm status r6)"
$BS dm reload leg4 --table "0 16384 error"
$BS dm resume leg4
if nbdcopy "$(uri r6)" r6.back 2>/dev/null; then fail "raid6: reads succeeded with three members gone"; fi
$BS dm remove r6

# ---- RAID1: a mirror with unreadable blocks is repaired from the other ----
for i in 0 1; do $BS dm reload "leg$i" --table "0 16384 linear $T/m$i 0"; $BS dm resume "leg$i"; done
$BS dm create r1 --table "0 16384 raid raid1 1 0 2 - /dev/mapper/leg0 - /dev/mapper/leg1"
wait_idle r1
head -c $((16384 * 512)) /dev/urandom >r1.data
nbdcopy r1.data "$(uri r1)"
$BS dm reload leg0 --table "0 16384 flakey $T/m0 0 0 3600 1 error_reads"
$BS dm resume leg0
read_ok r1 r1.data || fail "raid1: reads wrong with one mirror failing reads"
$BS dm status r1 | grep -q ' 2 AA ' || fail "raid1: a mirror failing only reads was dropped (the rewrite should have fixed it)"
$BS dm remove r1

# ---- RAID1: both copies dead: reads fail with EIO, and probing marks both members faulty ----
for i in 0 1; do $BS dm reload "leg$i" --table "0 16384 linear $T/m$i 0"; $BS dm resume "leg$i"; done
$BS dm create r1d --table "0 16384 raid raid1 1 0 2 - /dev/mapper/leg0 - /dev/mapper/leg1"
wait_idle r1d
for i in 0 1; do $BS dm reload "leg$i" --table "0 16384 error"; $BS dm resume "leg$i"; done
if nbdcopy "$(uri r1d)" r1d.back 2>/dev/null; then fail "raid1: reads succeeded with both copies dead"; fi
for i in 0 1; do
	grep -q "leg$i (role $i) marked faulty: a read error nothing could recover" "$T/daemon.log" ||
		fail "raid1: dead member leg$i was not marked faulty"
done
$BS dm status r1d | grep -q ' 2 DD ' || fail "raid1: both members not shown as D: $($BS dm status r1d)"
$BS dm remove r1d

for i in 0 1 2 3 4; do $BS dm remove "leg$i"; done
stop_daemon
log ok
