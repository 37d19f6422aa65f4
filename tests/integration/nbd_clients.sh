#!/bin/bash
# timeout: 120
# Real NBD clients against blkstackd: nbdinfo (sizes, flags, block sizes, the export list),
# nbdcopy in and out of a striped and a linear device (byte for byte, and the backing files
# against the layout the tables describe), qemu-img convert/compare/info and qemu-io with
# patterns over nbd+unix://.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
mkimg 8M a.img b.img
mkimg 17M c.img
mkimg 4M k.img
start_daemon

# s: 16 MiB striped over a and b, chunks of 16 sectors (8 KiB)
$BS dm create s --table "0 32768 striped 2 16 $T/a.img 0 $T/b.img 0"
# l: 16 MiB linear over c from 1 MiB on
$BS dm create l --table "0 32768 linear $T/c.img 2048"
# ro: read-only view of the first MiB of c
$BS dm create ro --readonly --table "0 2048 linear $T/c.img 0"
# k: crypt with 4 KiB sectors (minimum block size 4096)
key=$(printf '%064x' 0)$(printf '%064x' 1)
$BS dm create k --table "0 8192 crypt aes-xts-plain64 $key 0 $T/k.img 0 1 sector_size:4096"
# z: zero target, 1 MiB
$BS dm create z --table "0 2048 zero"

# ---- nbdinfo -------------------------------------------------------------------------------
info() { nbdinfo --json "$(uri "$1")" | jq -r ".exports[0].\"$2\""; }
expect_info() { # dev key value
	local v
	v=$(info "$1" "$2")
	[ "$v" = "$3" ] || fail "nbdinfo $1: $2 is $v, expected $3"
}
for d in s l; do
	expect_info $d export-size 16777216
	expect_info $d is_read_only false
	for f in can_flush can_fua can_trim can_zero can_multi_conn can_df; do
		expect_info $d $f true
	done
	# FAST_ZERO is not offered (no promise that zeroing is faster than writing)
	expect_info $d can_fast_zero false
	expect_info $d block_size_minimum 512
	expect_info $d block_size_preferred 4096
	expect_info $d block_size_maximum 33554432
done
expect_info ro export-size 1048576
expect_info ro is_read_only true
expect_info k export-size 4194304
expect_info k block_size_minimum 4096
expect_info k block_size_preferred 4096
expect_info z export-size 1048576
[ "$(nbdinfo --size "$(uri l)")" = 16777216 ] || fail "nbdinfo --size"
expect_info s export-name s
expect_info s description "blkstack device s"

# --list shows every device, and nothing else
nbdinfo --list --json "nbd+unix:///?socket=$NBD_SOCK" | jq -r '.exports[]."export-name"' |
	sort >list.txt
[ "$(tr '\n' ' ' <list.txt)" = "k l ro s z " ] || fail "nbdinfo --list: $(cat list.txt)"
# a new device shows up, a removed one goes away
$BS dm create extra --table "0 8 zero"
nbdinfo --list --json "nbd+unix:///?socket=$NBD_SOCK" | jq -e '.exports | length == 6' >/dev/null ||
	fail "nbdinfo --list misses a new device"
$BS dm remove extra
nbdinfo --list --json "nbd+unix:///?socket=$NBD_SOCK" | jq -e '.exports | length == 5' >/dev/null ||
	fail "nbdinfo --list shows a removed device"
# an unknown export is refused
if nbdinfo --size "$(uri nosuch)" 2>err.txt; then fail "unknown export accepted"; fi
# the default export exists only when there is exactly one device
if nbdinfo --size "nbd+unix:///?socket=$NBD_SOCK" 2>/dev/null; then
	fail "empty export name accepted with five devices"
fi

# ---- nbdcopy ---------------------------------------------------------------------------------
randfile data.bin 16
log "nbdcopy into the striped device (multi-conn)"
nbdcopy --connections=4 --requests=16 data.bin "$(uri s)"
nbdcopy "$(uri s)" back.bin
cmp data.bin back.bin || fail "striped device read back differs"
# the backing files hold the chunks round-robin: chunk i (8 KiB) on file i%2 at (i/2)*8 KiB
$PY - data.bin a.img b.img <<'PY' || fail "striped layout on the backing files"
import sys
data = open(sys.argv[1], "rb").read()
files = [open(p, "rb").read() for p in sys.argv[2:]]
chunk = 16 * 512
for i in range(len(data) // chunk):
    f, pos = files[i % 2], (i // 2) * chunk
    if f[pos:pos + chunk] != data[i * chunk:(i + 1) * chunk]:
        sys.exit("chunk %d is not at %d in stripe %d" % (i, pos, i % 2))
PY

log "nbdcopy into the linear device"
randfile data2.bin 16
nbdcopy data2.bin "$(uri l)"
nbdcopy "$(uri l)" - | cmp - data2.bin || fail "linear device read back differs"
cmp -n 16777216 -i 1048576:0 c.img data2.bin || fail "linear data not at 1 MiB in c.img"
cmp -n 1048576 c.img /dev/zero || fail "linear device wrote before its offset"
# the read-only device shows c's first MiB (zeroes) and refuses writes
nbdcopy "$(uri ro)" - | cmp - <(head -c 1048576 /dev/zero) || fail "read-only device contents"
if nbdcopy data.bin "$(uri ro)" 2>/dev/null; then fail "nbdcopy wrote to a read-only device"; fi
cmp -n 1048576 c.img /dev/zero || fail "a write reached a read-only device's file"
# the zero target reads zeroes and drops writes
head -c 1048576 data.bin >z.bin
nbdcopy z.bin "$(uri z)" || fail "nbdcopy into the zero target"
nbdcopy "$(uri z)" - | cmp - <(head -c 1048576 /dev/zero) || fail "zero target"
# crypt with 4 KiB sectors: the data round-trips, and the file holds ciphertext
head -c 4194304 data.bin >k.bin
nbdcopy k.bin "$(uri k)"
nbdcopy "$(uri k)" - | cmp - k.bin || fail "crypt device read back differs"
if cmp -s k.img k.bin; then fail "crypt device stored plaintext"; fi

# ---- qemu-img and qemu-io ---------------------------------------------------------------------
log "qemu-img"
qemu-img info --output=json "$(uri l)" | jq -e '."virtual-size" == 16777216' >/dev/null ||
	fail "qemu-img info size"
randfile q.raw 16
qemu-img convert -n -f raw -O raw q.raw "$(uri s)"
qemu-img compare -f raw -F raw q.raw "$(uri s)" >/dev/null || fail "qemu-img compare after convert"
nbdcopy "$(uri s)" - | cmp - q.raw || fail "data written by qemu-img convert differs"
# and out again, through qemu's NBD client
qemu-img convert -f raw -O raw "$(uri s)" out.raw
cmp out.raw q.raw || fail "qemu-img convert out of the device differs"
# compare notices a single changed byte (and reports its 512-byte sector)
printf '\x5a' | dd of=q.raw bs=1 seek=9999999 conv=notrunc status=none
rc=0
qemu-img compare -f raw -F raw q.raw "$(uri s)" >cmp.txt 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "qemu-img compare missed a difference (exit $rc): $(cat cmp.txt)"
grep -q 'offset 9999872' cmp.txt || fail "qemu-img compare: $(cat cmp.txt)"

log "qemu-io"
qio() { # dev commands... ; fails on any qemu-io error
	local dev=$1 out
	shift
	local args=()
	for c in "$@"; do args+=(-c "$c"); done
	out=$(qemu-io -f raw "${args[@]}" "$(uri "$dev")" 2>&1) || { echo "$out" >&2; return 1; }
	if grep -qiE 'fail|error|mismatch' <<<"$out"; then echo "$out" >&2; return 1; fi
}
qio l 'write -P 0xab 4096 8192' 'read -P 0xab 4096 8192' 'write -P 0xcd 12288 512' \
	'read -P 0xcd 12288 512' 'read -P 0xab 4096 8192' || fail "qemu-io write/read patterns"
# unaligned I/O (read-modify-write inside the server)
qio l 'write -P 0x11 100001 777' 'read -P 0x11 100001 777' || fail "qemu-io unaligned"
# FUA writes, flush, write-zeroes and discard
qio l 'write -f -P 0x22 1048576 65536' 'flush' 'read -P 0x22 1048576 65536' ||
	fail "qemu-io FUA write"
qio l 'write -z 1048576 4096' 'read -P 0 1048576 4096' 'read -P 0x22 1052672 61440' ||
	fail "qemu-io write-zeroes"
qio l 'discard 1114112 65536' || fail "qemu-io discard"
# what qemu-io wrote is where the linear table says, in c.img
$PY - c.img <<'PY' || fail "qemu-io writes are not in c.img where the table maps them"
import sys
f = open(sys.argv[1], "rb").read()
base = 1 << 20
def chk(off, n, byte):
    if f[base + off:base + off + n] != bytes([byte]) * n:
        sys.exit("offset %d+%d is not %#x" % (off, n, byte))
chk(4096, 8192, 0xab)
chk(12288, 512, 0xcd)
chk(100001, 777, 0x11)
chk(1048576, 4096, 0)
chk(1052672, 61440, 0x22)
PY
# a pattern mismatch is detected (the checker can fail)
if qio l 'read -P 0xab 12288 512' 2>/dev/null; then fail "qemu-io pattern check cannot fail"; fi
# a read-only device refuses qemu-io writes
if qemu-io -f raw -c 'write -P 1 0 512' "$(uri ro)" 2>&1 | grep -qi 'wrote'; then
	fail "qemu-io wrote to a read-only device"
fi
cmp -n 1048576 c.img /dev/zero || fail "a qemu-io write reached the read-only device's file"

stop_daemon
log ok
