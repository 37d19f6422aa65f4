#!/bin/bash
# timeout: 300
# md arrays end to end: superblocks that mdadm reads, assemble/stop/scan, fail/remove/add
# with a byte-exact rebuild, check/repair, and hostile member sets refused with reasons.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
MODEL="$PY $TOP/tests/integration/helpers/mdlayout.py"
mkimg 24M a b c d e x y z
start_daemon

wait_sync() { $BS raid wait "$1" >/dev/null; }
dval() { $BS raid detail "$1" | sed -n "s/^ *$2 : //p"; }
data_offset() { mdadm --examine "$1" | sed -n 's/^ *Data Offset : \([0-9]*\) sectors/\1/p'; }

# ---- create: mdadm reads what we wrote ----
$BS raid create r5 --level 5 --raid-devices 3 --chunk 64 a b c
wait_sync r5
uuid=$(dval r5 UUID)
for m in a b c; do
	ex=$(mdadm --examine "$m") || fail "mdadm cannot examine member $m"
	grep -q 'Raid Level : raid5' <<<"$ex" || fail "$m: level"
	grep -q 'Raid Devices : 3' <<<"$ex" || fail "$m: devices"
	grep -q 'Chunk Size : 64K' <<<"$ex" || fail "$m: chunk"
	grep -q 'Layout : left-symmetric' <<<"$ex" || fail "$m: layout"
	grep -q "Array UUID : $uuid" <<<"$ex" || fail "$m: uuid"
	grep -q 'Checksum : .* - correct' <<<"$ex" || fail "$m: checksum"
	grep -q 'Array State : AAA' <<<"$ex" || fail "$m: array state"
done
mdadm --examine a | grep -q 'Device Role : Active device 0' || fail "role of a"
mdadm --examine c | grep -q 'Device Role : Active device 2' || fail "role of c"
[ "$($BS raid examine --scan a)" = "$(mdadm --examine --brief --scan a | head -1)" ] ||
	fail "examine --scan differs from mdadm -Ebsc"
$BS raid examine b | grep -q "Array UUID : $uuid" || fail "raid examine"

# ---- data lands where md puts it ----
sectors=$($BS dm table r5 | awk '{print $2}')
head -c $((sectors * 512)) /dev/urandom >r5.data
nbdcopy r5.data "$(uri r5)"
$BS dm suspend r5
$MODEL check 5 2 128 r5.data a b c --offset "$(data_offset a)" || fail "md layout"
$BS dm resume r5

# ---- stop and assemble, by name and by scan ----
$BS raid stop r5
expect_error 'does not exist' $BS raid detail r5
$BS raid assemble r5 c a b 2>/dev/null
nbdcopy "$(uri r5)" back && cmp r5.data back || fail "data after assemble"
$BS raid stop r5
mkdir scan && ln a b c scan/
$BS raid assemble --scan scan 2>/dev/null
$BS dm ls | grep -q '^r5' || fail "assemble --scan did not name the array after its superblock"
nbdcopy "$(uri r5)" back && cmp r5.data back || fail "data after assemble --scan"
$BS raid stop r5
rm -r scan

# ---- hostile member sets ----
$BS raid create other --level 1 --raid-devices 2 --assume-clean x y
$BS raid stop other
expect_error 'belongs to array' $BS raid assemble r5 a b x
expect_error 'no md superblock' $BS raid assemble r5 a b z
expect_error 'degraded array without --run' $BS raid assemble r5 a b
cp c c.saved
printf '\xff' | dd of=c bs=1 seek=$((4096 + 72)) conv=notrunc status=none # level field
expect_error 'checksum mismatch' $BS raid assemble r5 a b c
cp c.saved c
# members disagreeing: same array, one superblock says another chunk size (checksum fixed)
$PY - c <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b"); f.seek(4096); sb = bytearray(f.read(4096))
struct.pack_into("<I", sb, 88, 256)                       # chunksize
max_dev = struct.unpack_from("<I", sb, 220)[0]
struct.pack_into("<I", sb, 216, 0)
s = sum(struct.unpack_from("<%dI" % ((256 + 2 * max_dev) // 4), sb))
struct.pack_into("<I", sb, 216, (s & 0xffffffff) + (s >> 32))
f.seek(4096); f.write(sb)
PY
expect_error 'members disagree' $BS raid assemble r5 a b c
cp c.saved c
$BS dm ls | grep -q '^r5' && fail "a refused assembly left a device"

# ---- fail / remove / add: degraded service and an exact rebuild ----
$BS raid assemble r5 a b c 2>/dev/null
$BS raid fail r5 b 2>/dev/null
[ "$(dval r5 State)" = "active, degraded" ] || [ "$(dval r5 State)" = "clean, degraded" ] ||
	fail "state after fail: $(dval r5 State)"
nbdcopy "$(uri r5)" back && cmp r5.data back || fail "degraded read"
expect_error 'busy|fail it first' $BS raid remove r5 a
$BS raid remove r5 b 2>/dev/null
$BS raid add r5 d 2>/dev/null
wait_sync r5
$BS raid status | grep -q '\[UUU\]' || fail "not back to UUU after rebuild: $($BS raid status)"
nbdcopy "$(uri r5)" back && cmp r5.data back || fail "read after rebuild"
$BS dm suspend r5
$MODEL check 5 2 128 r5.data a d c --offset "$(data_offset a)" || fail "rebuilt member not exact"
$BS dm resume r5
mdadm --examine d | grep -q 'Device Role : Active device 1' || fail "rebuilt member's role"
# a member that was failed and removed is stale: assembling with it is refused
$BS raid stop r5
expect_error 'without --run; .*/b is out of date' $BS raid assemble r5 a b c
$BS raid assemble r5 a c d 2>/dev/null


# ---- check and repair ----
$BS raid check r5 --wait
mm=$($BS dm message r5 0 detail | sed -n 's/^mismatch_cnt: //p')
[ "$mm" = 0 ] || fail "mismatch_cnt $mm on a fresh array"
off=$(data_offset c)

# flip a byte in member c's first chunk (data or parity, either mismatches)
printf '\x55' | dd of=c bs=1 seek=$((off * 512 + 100)) conv=notrunc status=none
$BS raid check r5 --wait
mm=$($BS dm message r5 0 detail | sed -n 's/^mismatch_cnt: //p')
[ "$mm" -gt 0 ] || fail "check did not count the corrupted block (mismatch_cnt $mm)"
$BS raid repair r5 --wait
$BS raid check r5 --wait
mm=$($BS dm message r5 0 detail | sed -n 's/^mismatch_cnt: //p')
[ "$mm" = 0 ] || fail "mismatch_cnt $mm after repair"

# ---- RAID6 with two members gone ----
$BS raid stop r5
$BS raid create r6 --level 6 --raid-devices 5 --chunk 64 a b c d e 2>/dev/null
wait_sync r6
sectors=$($BS dm table r6 | awk '{print $2}')
head -c $((sectors * 512)) /dev/urandom >r6.data
nbdcopy r6.data "$(uri r6)"
$BS raid stop r6
$BS raid assemble r6 a c e --run 2>/dev/null
nbdcopy "$(uri r6)" back && cmp r6.data back || fail "raid6 with two members gone"
$BS raid stop r6

stop_daemon
log ok
