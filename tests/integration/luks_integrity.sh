#!/bin/bash
# LUKS2 authenticated encryption (cryptsetup's --integrity), both ways:
#   - the kernel-made fixtures (tests/fixtures/luks-integrity: aes-xts-plain64 + hmac(sha256)
#     and aes-gcm-random + aead, 512- and 4096-byte sectors, wiped or not) dump as cryptsetup
#     dumped them, open as the same two devices (tables and dm UUIDs as the kernel's), read
#     back the data the kernel wrote (sha256), and fail to read never-written sectors where
#     the kernel failed too; close removes both devices;
#   - volumes blkstack formats with --integrity hmac-sha256 / aead (512- and 4096-byte
#     sectors, wiped or not: the four layouts of the fixtures) pass cryptsetup luksDump
#     (integrity shown, the same JSON segment and volume key), get the superblock the kernel
#     laid out for the same sizes, read as zeroes after the wipe, take random data over NBD
#     and read it back, and an independent decryptor (helpers/luks_aead.py, itself checked on
#     the fixtures) reads the same data from the image;
#   - one flipped ciphertext or tag byte in the image makes that sector (and only it) fail
#     with EIO, and the daemon logs INTEGRITY AEAD ERROR; rewriting the sector repairs it;
#   - aes-cbc-plain64, aes-xts-random (IV in the tag), hmac-sha512 and hmac-sha1 volumes
#     round-trip and the independent decryptor reads them;
#   - a detached header (--header) with the integrity device at the start of the data device;
#   - the daemon killed (SIGKILL) during writes, three times: after the journal replay every
#     sector reads (data and tag stay together);
#   - what is not supported is refused in one line.
source "$(dirname "$0")/../lib/common.sh"

command -v cryptsetup >/dev/null || skip "cryptsetup (cryptsetup-bin) is not installed"
$PY -c 'import nbd, cryptography' 2>/dev/null || skip "python3-libnbd or python3-cryptography missing"
FX=$TOP/tests/fixtures/luks-integrity
HELP=$TOP/tests/integration/helpers
cd "$T"
start_daemon
cp "$FX/pass.txt" pass
PB="--pbkdf pbkdf2 --pbkdf-force-iterations 1000"

val() { sed -n "s/^$2=//p" "$FX/$1.txt" | head -1; }

# nbdread DEV OFFSET LEN: sha256 of the bytes, or "EIO"
nbdsum() {
	$PY - "$(uri "$1")" "$2" "$3" <<'EOF'
import errno, hashlib, nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
off, n = int(sys.argv[2]), int(sys.argv[3])
m = hashlib.sha256()
try:
    while n:
        c = min(n, 1 << 20)
        m.update(h.pread(c, off))
        off += c
        n -= c
except nbd.Error as e:
    if e.errnum != errno.EIO:
        sys.exit("read: %s" % e)
    print("EIO")
    sys.exit(0)
print(m.hexdigest())
EOF
}

# nbdwrite DEV OFFSET FILE, flushed
nbdwrite() {
	$PY - "$(uri "$1")" "$2" "$3" <<'EOF'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pwrite(open(sys.argv[3], "rb").read(), int(sys.argv[2]))
h.flush()
h.shutdown()
EOF
}

bs_vk() { # image
	$BS luks dump --dump-volume-key --key-file pass "$1" |
		awk '/^MK dump:/ { f = 1 } f { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9a-f][0-9a-f]$/) printf "%s", $i } END { print "" }'
}
cs_vk() { # image
	cryptsetup luksDump -q --dump-volume-key --key-file pass "$1" |
		awk '/^MK dump:/ { f = 1 } f { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9a-f][0-9a-f]$/) printf "%s", $i } END { print "" }'
}

# ---- the kernel's volumes ---------------------------------------------------------------------
for n in hmac256-512 hmac256-4096 gcm-512 gcm-4096; do
	log "fixture $n"
	xz -dc "$FX/$n.img.xz" >"$n.img"
	$BS luks dump "$n.img" >"$n.dump"
	diff -u "$FX/$n.dump" "$n.dump" || fail "$n: luks dump differs from cryptsetup's"
	$BS luks open --test-passphrase --key-file pass "$n.img" || fail "$n: passphrase refused"
	[ "$(bs_vk "$n.img")" = "$(val "$n" volume_key)" ] || fail "$n: volume key differs"
	$BS luks open --key-file pass "$n.img" "$n"
	# the tables the kernel had, with our paths and the key shown as zeroes
	want=$(val "$n" diftable | awk -v p="$T/$n.img" '{ $4 = p; print }')
	got=$($BS dm table "${n}_dif")
	[ "$got" = "$want" ] || fail "$n: integrity table
  got  $got
  want $want"
	vk=$(val "$n" volume_key)
	want=$(val "$n" table | awk -v z="$(printf '%0*d' ${#vk} 0)" -v d="/dev/mapper/${n}_dif" \
		'{ $5 = z; $7 = d; print }')
	got=$($BS dm table "$n")
	[ "$got" = "$want" ] || fail "$n: crypt table
  got  $got
  want $want"
	$BS dm info "$n" | grep -q "UUID: *$(val "$n" dm_uuid)$" || fail "$n: dm uuid"
	$BS dm info "${n}_dif" | grep -q "UUID: *$(sed -n 's/^dm_uuid=//p' "$FX/$n.txt" | sed -n 2p)$" ||
		fail "$n: integrity dm uuid"
	[ "$($BS dm table --showkeys "$n" | awk '{ print $5 }')" = "$vk" ] || fail "$n: key"
	at=$(val "$n" write_at)
	cnt=$(val "$n" write_sectors)
	[ "$(nbdsum "$n" $((at * 512)) $((cnt * 512)))" = "$(val "$n" sha256)" ] ||
		fail "$n: the data the kernel wrote reads back differently"
	size=$(val "$n" size)
	if [ "$(val "$n" wiped)" = yes ]; then
		[ "$(nbdsum "$n" 0 $((size * 512)))" = "$(val "$n" sha256_whole)" ] ||
			fail "$n: the whole device reads differently"
	fi
	first=$(nbdsum "$n" 0 4096)
	if [ "$(val "$n" unwritten_read)" = error ]; then
		[ "$first" = EIO ] || fail "$n: a never-written sector read without error"
	else
		[ "$first" != EIO ] || fail "$n: sector 0 failed to read"
	fi
	$BS luks close "$n"
	! $BS dm info "${n}_dif" >/dev/null 2>&1 || fail "$n: close left ${n}_dif behind"
	# an independent decryptor agrees with the kernel too (checks the checker)
	dd if="$n.img" of="$n.seg" bs=1M skip=1 status=none
	integ=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['segments']['0']['integrity']['type'])" "$FX/$n.json")
	[ "$($PY "$HELP/luks_aead.py" read "$n.seg" "$(val "$n" cipher)" "$integ" "$vk" "$at" "$cnt" |
		sha256sum | cut -c1-64)" = "$(val "$n" sha256)" ] || fail "$n: luks_aead.py disagrees"
done
grep -q "INTEGRITY AEAD ERROR" "$T/daemon.log" || fail "unwritten sectors were not logged"

# ---- blkstack's volumes -----------------------------------------------------------------------
# name  image-size  cipher  --integrity  JSON type  sector  wipe  kernel fixture of that layout
while read -r n size cipher integ jtype ss wipe same; do
	[ -n "$n" ] || continue
	log "format $n"
	truncate -s "$size" "$n.img"
	nw=
	[ "$wipe" = yes ] || nw=--integrity-no-wipe
	# shellcheck disable=SC2086
	$BS luks format -q $PB --key-file pass --luks2-keyslots-size 512k --cipher "$cipher" \
		--integrity "$integ" --sector-size "$ss" $nw "$n.img"
	cryptsetup luksDump "$n.img" >"$n.csdump" || fail "$n: cryptsetup luksDump refused it"
	grep -qx "	integrity: $jtype" "$n.csdump" || fail "$n: luksDump shows no integrity $jtype"
	cryptsetup luksDump --dump-json-metadata "$n.img" >"$n.json"
	$PY - "$n.json" "$jtype" "$cipher" "$ss" <<'EOF' || fail "$n: JSON segment"
import json, sys
j = json.load(open(sys.argv[1]))
s = j["segments"]["0"]
assert s["integrity"] == {"type": sys.argv[2], "journal_encryption": "none",
                          "journal_integrity": "none"}, s
assert s["encryption"] == sys.argv[3] and s["sector_size"] == int(sys.argv[4]), s
assert j["keyslots"]["0"]["area"]["encryption"] == "aes-xts-plain64", j["keyslots"]
EOF
	vk=$(bs_vk "$n.img")
	[ "$(cs_vk "$n.img")" = "$vk" ] || fail "$n: cryptsetup finds another volume key"
	case $integ in
	hmac-sha256) [ ${#vk} -eq 192 ] || fail "$n: volume key of ${#vk} hex digits" ;;
	aead) [ ${#vk} -eq 64 ] || fail "$n: volume key of ${#vk} hex digits" ;;
	esac
	# the same integrity superblock as the kernel's for this size
	dd if="$n.img" of="$n.seg" bs=1M skip=1 status=none
	dd if="$same.img" of="$same.ref" bs=1M skip=1 status=none
	$BS integrity dump "$n.seg" | tail -n +2 >"$n.sb"
	$BS integrity dump "$same.ref" | tail -n +2 >"$same.sb"
	diff -u "$same.sb" "$n.sb" || fail "$n: integrity superblock differs from the kernel's"

	$BS luks open --key-file pass "$n.img" "$n"
	sectors=$($BS dm table "$n" | awk '{ print $2 }')
	bytes=$((sectors * 512))
	if [ "$wipe" = yes ]; then
		[ "$(nbdsum "$n" 0 $bytes)" = "$(head -c $bytes /dev/zero | sha256sum | cut -c1-64)" ] ||
			fail "$n: the wiped device does not read as zeroes"
	else
		[ "$(nbdsum "$n" 0 4096)" = EIO ] || fail "$n: an unwiped sector read"
	fi
	# random data over NBD, read back, and read by the independent decryptor
	head -c 524288 /dev/urandom >"$n.data"
	nbdwrite "$n" 65536 "$n.data"
	want=$(sha256sum <"$n.data" | cut -c1-64)
	[ "$(nbdsum "$n" 65536 524288)" = "$want" ] || fail "$n: data did not read back"
	$BS luks close "$n"
	dd if="$n.img" of="$n.seg" bs=1M skip=1 status=none
	[ "$($PY "$HELP/luks_aead.py" read "$n.seg" "$cipher" "$jtype" "$vk" 128 1024 |
		sha256sum | cut -c1-64)" = "$want" ] || fail "$n: luks_aead.py reads other data"
	$BS luks open --key-file pass "$n.img" "$n"
	[ "$(nbdsum "$n" 65536 524288)" = "$want" ] || fail "$n: data lost after reopening"
	$BS luks close "$n"

	# tampering: one ciphertext byte, then one tag byte, each fails exactly its sector
	for what in data tag; do
		blk=$(( (65536 + 8192 * (1 + (${#what} % 2))) / 512 )) # a sector in the data
		off=$($PY "$HELP/integrity_check.py" ${what}off "$n.seg" "$blk")
		off=$((off + 1048576 + 7))
		printf '%02x' $(( $(od -An -tu1 -j "$off" -N1 "$n.img") ^ 0x55 )) | xxd -r -p |
			dd of="$n.img" bs=1 seek="$off" conv=notrunc status=none
		$BS luks open --key-file pass "$n.img" "$n"
		before=$(grep -c "INTEGRITY AEAD ERROR" "$T/daemon.log" || true)
		[ "$(nbdsum "$n" $((blk * 512)) "$ss")" = EIO ] ||
			fail "$n: the sector with a changed $what byte read without error"
		[ "$(grep -c "INTEGRITY AEAD ERROR" "$T/daemon.log")" -gt "$before" ] ||
			fail "$n: no INTEGRITY AEAD ERROR logged"
		grep "INTEGRITY AEAD ERROR" "$T/daemon.log" | tail -1 | grep -q "crypt $n: .*sector $blk" ||
			fail "$n: the log names another sector: $(grep "INTEGRITY AEAD ERROR" "$T/daemon.log" | tail -1)"
		for nb in $((blk - ss / 512)) $((blk + ss / 512)); do
			[ "$(nbdsum "$n" $((nb * 512)) "$ss")" = "$(dd if="$n.data" bs=512 skip=$((nb - 128)) count=$((ss / 512)) status=none | sha256sum | cut -c1-64)" ] ||
				fail "$n: the neighbour $nb of a damaged $what sector does not read"
		done
		# rewriting the sector makes it whole again
		head -c "$ss" /dev/urandom >"$n.fix"
		nbdwrite "$n" $((blk * 512)) "$n.fix"
		[ "$(nbdsum "$n" $((blk * 512)) "$ss")" = "$(sha256sum <"$n.fix" | cut -c1-64)" ] ||
			fail "$n: a rewritten sector does not read back"
		dd if="$n.fix" of="$n.data" bs=512 seek=$((blk - 128)) conv=notrunc status=none
		$BS luks close "$n"
	done
done <<'EOF'
x-hmac-512  3M aes-xts-plain64 hmac-sha256 hmac(sha256) 512  yes hmac256-512
x-hmac-4096 8M aes-xts-plain64 hmac-sha256 hmac(sha256) 4096 no  hmac256-4096
x-gcm-512   8M aes-gcm-random  aead        aead         512  yes gcm-512
x-gcm-4096  8M aes-gcm-random  aead        aead         4096 no  gcm-4096
EOF

# ---- the other hashes, CBC, random IVs with an HMAC: round trip and the independent reader ----
for combo in aes-cbc-plain64:hmac-sha256:hmac\(sha256\) aes-xts-random:hmac-sha256:hmac\(sha256\) \
	aes-xts-plain64:hmac-sha512:hmac\(sha512\) aes-xts-plain64:hmac-sha1:hmac\(sha1\); do
	IFS=: read -r cipher integ jtype <<<"$combo"
	log "format $cipher $integ"
	rm -f c.img
	truncate -s 8M c.img
	# shellcheck disable=SC2086
	$BS luks format -q $PB --key-file pass --luks2-keyslots-size 512k --cipher "$cipher" \
		--integrity "$integ" --sector-size 512 --integrity-no-wipe c.img
	cryptsetup luksDump c.img | grep -qx "	integrity: $jtype" || fail "$combo: luksDump"
	$BS luks open --key-file pass c.img c
	head -c 65536 /dev/urandom >c.data
	nbdwrite c 0 c.data
	want=$(sha256sum <c.data | cut -c1-64)
	[ "$(nbdsum c 0 65536)" = "$want" ] || fail "$combo: data did not read back"
	$BS luks close c
	dd if=c.img of=c.seg bs=1M skip=1 status=none
	[ "$($PY "$HELP/luks_aead.py" read c.seg "$cipher" "$jtype" "$(bs_vk c.img)" 0 128 |
		sha256sum | cut -c1-64)" = "$want" ] || fail "$combo: luks_aead.py reads other data"
done

# ---- a detached header: the integrity device starts the data device ---------------------------
log "detached header"
truncate -s 8M dd.img
# shellcheck disable=SC2086
$BS luks format -q $PB --key-file pass --header dd.hdr --integrity aead --cipher aes-gcm-random \
	--sector-size 512 dd.img
cryptsetup luksDump dd.hdr | grep -qx "	integrity: aead" || fail "detached: luksDump"
cryptsetup luksDump dd.hdr | grep -q "offset: 0 \[bytes\]" || fail "detached: data offset"
$BS integrity dump dd.img | grep -q "integrity_tag_size 28" || fail "detached: no superblock at 0"
$BS luks open --key-file pass --header dd.hdr dd.img dd
[ "$(nbdsum dd 0 4096)" = "$(head -c 4096 /dev/zero | sha256sum | cut -c1-64)" ] ||
	fail "detached: not wiped"
head -c 65536 /dev/urandom >dd.data
nbdwrite dd 8192 dd.data
want=$(sha256sum <dd.data | cut -c1-64)
[ "$(nbdsum dd 8192 65536)" = "$want" ] || fail "detached: data did not read back"
$BS luks close dd
[ "$($PY "$HELP/luks_aead.py" read dd.img aes-gcm-random aead "$(bs_vk dd.hdr)" 16 128 |
	sha256sum | cut -c1-64)" = "$want" ] || fail "detached: luks_aead.py reads other data"

# ---- a crash during writes: every sector still authenticates after the journal replay ---------
truncate -s 8M k.img
# shellcheck disable=SC2086
$BS luks format -q $PB --key-file pass --luks2-keyslots-size 512k --integrity hmac-sha256 \
	--sector-size 512 k.img
for round in 1 2 3; do
	log "crash $round"
	$BS luks open --key-file pass k.img k
	$PY - "$(uri k)" <<'PYEOF' &
import nbd, os, random, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
size, r = h.get_size(), random.Random()
try:
    while True:
        n = r.choice([512, 4096, 65536])
        h.pwrite(os.urandom(n), r.randrange(0, size - n) // 512 * 512)
        if r.random() < 0.1:
            h.flush()
except nbd.Error:
    pass
PYEOF
	writer=$!
	sleep "1.$((RANDOM % 9))"
	kill_daemon
	wait "$writer" || true
	start_daemon
	$BS luks open --key-file pass k.img k
	$PY - "$(uri k)" <<'PYEOF' || fail "round $round: sectors fail to read after the crash"
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
bad = 0
for off in range(0, h.get_size(), 4096):
    try:
        h.pread(4096, off)
    except nbd.Error:
        bad += 1
sys.exit("%d blocks of 4096 bytes fail" % bad if bad else 0)
PYEOF
	$BS luks close k
done

# ---- refusals ---------------------------------------------------------------------------------
truncate -s 8M r.img
expect_error 'only for LUKS2' $BS luks format -q --type luks1 --key-file pass --integrity aead r.img
expect_error 'invalid --integrity' $BS luks format -q --key-file pass --integrity crc32c r.img
expect_error 'random' $BS luks format -q $PB --key-file pass --cipher aes-gcm-plain64 \
	--integrity aead r.img
$BS luks open --key-file pass gcm-512.img g
expect_error 'resizing it is not supported' $BS luks resize g
$BS luks close g
expect_error 'allow-discards is not supported' $BS luks open --allow-discards --key-file pass \
	gcm-512.img g
! $BS dm info g_dif >/dev/null 2>&1 || fail "a refused open left g_dif behind"
# a crypt table whose tag size does not match the integrity device below: EIO, and said why
$BS luks open --key-file pass gcm-512.img g
$BS dm create m --table "0 64 crypt capi:authenc(hmac(sha256),xts(aes))-plain64 $(printf '%0192d' 0) 0 /dev/mapper/g_dif 0 1 integrity:32:aead"
[ "$(nbdsum m 0 512)" = EIO ] || fail "a tag size mismatch did not fail the read"
grep -q "integrity g_dif: refusing integrity metadata of 32 bytes per 512-byte block" \
	"$T/daemon.log" || fail "the tag size mismatch was not logged"
$BS dm remove m
$BS luks close g
# a name taken by something else refuses the open and leaves it alone
$BS dm create g_dif --table "0 8 zero"
expect_error 'g_dif already exists' $BS luks open --key-file pass gcm-512.img g
$BS dm remove g_dif

stop_daemon
log "ok"
