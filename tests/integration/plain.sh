#!/bin/bash
# blkstack plain open/close against cryptsetup 2.6 plain mode:
#   - images the Linux kernel wrote through `cryptsetup open --type plain` (tests/fixtures/
#     plain, made by make.sh in linux-lab) open with the same options and read back the
#     plaintext whose sha256 the kernel recorded: default cipher and hash with a passphrase, a
#     key file with --keyfile-offset, aes-xts-plain64 with --offset/--skip/--size, 4096-byte
#     sectors with and without --iv-large-sectors, a key file on standard input;
#   - data blkstack writes decrypts with python3-cryptography (helpers/plain_decrypt.py, which
#     also has to agree with the kernel's fixtures);
#   - bad options, keys and devices are refused with one line and create nothing; keys never
#     reach the daemon's log.
# timeout: 120
source "$(dirname "$0")/../lib/common.sh"

F=$TOP/tests/fixtures/plain
DEC="$PY $TOP/tests/integration/helpers/plain_decrypt.py"
cd "$T"
for f in default xts-keyfile xts-4k cbc-stdinkey essiv-4k; do
	xz -dc "$F/$f.img.xz" >$f.img
done
cp "$F/kf.bin" "$F/kf2.txt" .
start_daemon

expected() { sed -n "s/^$1 sha256: //p" "$F/expected.txt"; }
mapped_sha() { nbdcopy "$(uri "$1")" - | sha256sum | cut -d' ' -f1; }
check() { # name: blkstack's plaintext is the kernel's
	local got want
	got=$(mapped_sha "$1")
	want=$(expected "$1")
	[ -n "$want" ] || fail "no expected sha256 for $1"
	[ "$got" = "$want" ] || fail "$1: plaintext differs from what the kernel wrote"
}

# --- the kernel's images --------------------------------------------------------------------
printf 'correct horse battery staple\n' | $BS plain open default.img default
check default
$BS plain open --key-file kf.bin --keyfile-offset 17 --cipher aes-xts-plain64 --key-size 512 \
	--offset 256 --skip 1000 --size 512 xts-keyfile.img xts-keyfile
check xts-keyfile
printf 'Tr0ub4dor&3\n' | $BS plain open --hash sha512 --cipher aes-xts-plain64 --key-size 512 \
	--sector-size 4096 --iv-large-sectors --offset 64 --skip 8 --size 512 xts-4k.img xts-4k
check xts-4k
$BS plain open --key-file - --cipher aes-cbc-plain64 --key-size 128 cbc-stdinkey.img \
	cbc-stdinkey <kf2.txt
check cbc-stdinkey
printf 'x\n' | $BS plain open --sector-size 4096 --offset 8 essiv-4k.img essiv-4k
check essiv-4k

# the tables are cryptsetup's (key masked), the uuid is cryptsetup's
[ "$($BS dm table default)" = "0 512 crypt aes-cbc-essiv:sha256 $(printf '0%.0s' {1..64}) 0 $T/default.img 0" ] ||
	fail "table of default: $($BS dm table default)"
$BS dm table xts-4k | grep -q " 8 $T/xts-4k.img 64 2 sector_size:4096 iv_large_sectors\$" ||
	fail "table of xts-4k: $($BS dm table xts-4k)"
$BS dm info default | grep -q 'UUID: *CRYPT-PLAIN-default$' || fail "uuid of default"

# the independent model agrees with the kernel on the same images
[ "$($DEC default.img --cipher aes-cbc-essiv:sha256 --key-bits 256 \
	--pass 'correct horse battery staple')" = "$(expected default)" ] || fail "model: default"
[ "$($DEC xts-keyfile.img --cipher aes-xts-plain64 --key-bits 512 --key-file kf.bin \
	--keyfile-offset 17 --offset 256 --skip 1000 --size 512)" = "$(expected xts-keyfile)" ] ||
	fail "model: xts-keyfile"
[ "$($DEC xts-4k.img --cipher aes-xts-plain64 --key-bits 512 --pass 'Tr0ub4dor&3' --hash sha512 \
	--sector-size 4096 --large --offset 64 --skip 8 --size 512)" = "$(expected xts-4k)" ] ||
	fail "model: xts-4k"

# a wrong passphrase opens (plain mode cannot tell) but reads something else
printf 'wrong\n' | $BS plain open --readonly default.img wrong
[ "$(mapped_sha wrong)" != "$(expected default)" ] || fail "a wrong passphrase read the data"
$PY - "$NBD_SOCK" <<'PY' && fail "a read-only mapping took a write"
import nbd, sys
h = nbd.NBD()
h.set_export_name("wrong")
h.connect_unix(sys.argv[1])
try:
    h.pwrite(b"x" * 512, 0)
except nbd.Error:
    sys.exit(1)
PY
for n in default xts-keyfile xts-4k cbc-stdinkey essiv-4k wrong; do
	$BS plain close $n
done
[ -z "$($BS dm ls 2>/dev/null | grep -v 'No devices')" ] || fail "devices left after close"

# --- blkstack writes, python3-cryptography reads ------------------------------------------
data=$T/data.bin
randfile "$data" 1
mkimg 2M w1.img w2.img
$BS plain open --key-file kf.bin --keyfile-offset 3 --cipher aes-xts-plain64 --key-size 512 \
	--offset 1024 --skip 77 w1.img w1
nbdcopy "$data" "$(uri w1)"
$BS plain close w1
[ "$($DEC w1.img --cipher aes-xts-plain64 --key-bits 512 --key-file kf.bin --keyfile-offset 3 \
	--offset 1024 --skip 77 --size 2048)" = "$(sha256sum <"$data" | cut -d' ' -f1)" ] ||
	fail "python does not decrypt what blkstack wrote (xts, key file)"
cmp -n $((1024 * 512)) w1.img /dev/zero || fail "blkstack wrote before --offset"
printf 'hunter2\n' | $BS plain open --sector-size 4096 --iv-large-sectors --offset 2048 w2.img w2
nbdcopy "$data" "$(uri w2)"
$BS plain close w2
[ "$($DEC w2.img --cipher aes-cbc-essiv:sha256 --key-bits 256 --pass hunter2 --offset 2048 \
	--sector-size 4096 --large)" = "$(sha256sum <"$data" | cut -d' ' -f1)" ] ||
	fail "python does not decrypt what blkstack wrote (essiv, passphrase, 4096)"

# a plain volume on a blkstack device (sized over NBD by the CLI)
$BS dm create base --table "0 2048 linear $T/w1.img 1024"
$BS plain open --key-file kf.bin --keyfile-offset 3 --cipher aes-xts-plain64 --key-size 512 \
	--skip 77 /dev/mapper/base stacked
[ "$($BS dm table stacked | cut -d' ' -f1,2,7,8)" = "0 2048 /dev/mapper/base 0" ] ||
	fail "table of stacked: $($BS dm table stacked)"
[ "$(mapped_sha stacked)" = "$(sha256sum <"$data" | cut -d' ' -f1)" ] ||
	fail "plain over a blkstack device does not read what was written"
$BS plain close stacked
$BS dm remove base

# --- refusals: one line, nothing created ----------------------------------------------------
P() { printf 'pass\n' | "$@"; }
expect_error 'cipher aes-ctr-plain64: unsupported chaining mode' \
	P $BS plain open --cipher aes-ctr-plain64 default.img bad
expect_error 'cipher twofish: unsupported cipher' P $BS plain open -c twofish default.img bad
expect_error 'key size must be a multiple of 8 bits' P $BS plain open --key-size 100 default.img bad
expect_error 'a 384-bit key does not fit cipher aes-cbc-essiv:sha256' \
	P $BS plain open --key-size 384 default.img bad
expect_error 'invalid --key-size "abc"' P $BS plain open --key-size abc default.img bad
expect_error '--hash nosuch: hash algorithm not supported' P $BS plain open --hash nosuch default.img bad
expect_error '--hash sha256:40: hash length is larger than the key' \
	P $BS plain open --hash sha256:40 default.img bad
expect_error '--offset 512 is beyond the end' P $BS plain open --offset 512 default.img bad
expect_error '--size 600 does not fit' P $BS plain open --size 600 default.img bad
expect_error '--offset is not a multiple of the 4096-byte sector size' \
	P $BS plain open --sector-size 4096 --offset 3 default.img bad
expect_error '--skip is not a multiple' P $BS plain open --sector-size 4096 --skip 3 default.img bad
expect_error 'the device size is not a multiple' P $BS plain open --sector-size 4096 --size 5 default.img bad
expect_error 'sector size must be a power of two' P $BS plain open --sector-size 1000 default.img bad
expect_error 'iv-large-sectors needs --sector-size' P $BS plain open --iv-large-sectors default.img bad
expect_error 'keyfile-offset needs --key-file' P $BS plain open --keyfile-offset 3 default.img bad
expect_error 'cannot read 64 bytes from key file' \
	$BS plain open --key-file kf.bin --keyfile-offset 100 -c aes-xts-plain64 -s 512 default.img bad
expect_error 'cannot open key file' $BS plain open --key-file nosuch default.img bad
expect_error 'empty passphrase' $BS plain open default.img bad </dev/null
expect_error 'cannot open nosuch.img' P $BS plain open nosuch.img bad
expect_error 'invalid device name' P $BS plain open default.img a/b
expect_error 'missing arguments' $BS plain open default.img
expect_error 'too many arguments' $BS plain open default.img a b
expect_error 'unknown option' $BS plain open --frobnicate default.img bad
expect_error 'unknown command' $BS plain frobnicate
printf 'pass\n' | $BS plain open default.img taken
expect_error 'already exists' P $BS plain open default.img taken
$BS dm create lin --table "0 8 linear $T/default.img 0"
expect_error 'device lin is not a plain dm-crypt device' $BS plain close lin
expect_error 'device nosuch is not active' $BS plain close nosuch
expect_error 'takes no options' $BS plain close --cipher x taken
[ "$($BS dm ls | wc -l)" -eq 2 ] || fail "a refused open left a device behind"
$BS plain close taken
$BS dm remove lin

# a key file with --hash: cryptsetup's warning, and the key file is still the key
$BS plain open --key-file kf.bin --hash sha256 -c aes-xts-plain64 -s 512 --size 512 --offset 256 \
	--skip 1000 --keyfile-offset 17 xts-keyfile.img warned 2>warn.txt
grep -q 'warning: --hash is ignored' warn.txt || fail "no warning for --hash with a key file"
[ "$(mapped_sha warned)" = "$(expected xts-keyfile)" ] || fail "--hash changed a key file's key"
$BS plain close warned

# the daemon never logged a key
key=$($PY -c 'import hashlib; print(hashlib.new("ripemd160", b"correct horse battery staple").hexdigest()[:16])')
! grep -q "$key" "$T/daemon.log" || fail "the daemon log holds a key"

stop_daemon
log "ok"
