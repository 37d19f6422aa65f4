#!/bin/bash
# timeout: 240
# LUKS1 and LUKS2 both ways with cryptsetup 2.6 on image files:
#   - images cryptsetup formats (pbkdf2 and argon2id, sector sizes 512 and 4096, key slots
#     added with luksAddKey) unlock in blkstack from every slot (--test-passphrase), open in
#     the daemon with the volume key cryptsetup reports, and data written over NBD reads back;
#   - images blkstack formats pass cryptsetup luksDump and open --test-passphrase from every
#     slot added with blkstack add-key, and cryptsetup luksDump --dump-volume-key gives the key
#     `blkstack luks dump --dump-volume-key` and `dm table --showkeys` show;
#   - key management (add/remove/change-key, kill-slot, header backup/restore, uuid,
#     is-luks), detached headers and a damaged primary LUKS2 header, with cryptsetup as the
#     oracle; wrong passphrases exit 2 and change nothing; bad input is refused in one line.
source "$(dirname "$0")/../lib/common.sh"

command -v cryptsetup >/dev/null || skip "cryptsetup (cryptsetup-bin) is not installed"
cd "$T"
start_daemon

PB_PBKDF2="--pbkdf pbkdf2 --pbkdf-force-iterations 1000"
PB_ARGON="--pbkdf argon2id --pbkdf-memory 64 --pbkdf-force-iterations 4"
printf 'pass zero' >k0
printf 'pass one' >k1
printf 'pass two' >k2
head -c 100 /dev/urandom >kbin # binary key file
printf 'wrong' >kw

# the volume key cryptsetup reports, as hex
cs_vk() { # image keyfile [cryptsetup options]
	local img=$1 kf=$2
	shift 2
	cryptsetup luksDump -q --dump-volume-key --key-file "$kf" "$@" "$img" |
		awk '/^MK dump:/ { f = 1 } f { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9a-f][0-9a-f]$/) printf "%s", $i } END { print "" }'
}
bs_vk() { # image keyfile [blkstack options]
	local img=$1 kf=$2
	shift 2
	$BS luks dump --dump-volume-key --key-file "$kf" "$@" "$img" |
		awk '/^MK dump:/ { f = 1 } f { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9a-f][0-9a-f]$/) printf "%s", $i } END { print "" }'
}
table_key() { $BS dm table --showkeys "$1" | awk '{ print $5 }'; }

# writes 1 MiB of random data at OFFSET through NBD and reads it back
nbd_roundtrip() { # device offset
	head -c 1048576 /dev/urandom >rt.in
	$PY - "$(uri "$1")" "$2" <<'EOF'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
off = int(sys.argv[2])
data = open("rt.in", "rb").read()
h.pwrite(data, off)
h.flush()
h.shutdown()
h = nbd.NBD()
h.connect_uri(sys.argv[1])
back = h.pread(len(data), off)
h.shutdown()
sys.exit(0 if back == data else 1)
EOF
}

# ---- cryptsetup -> blkstack ------------------------------------------------------------------
for combo in luks1:pbkdf2:512 luks2:pbkdf2:512 luks2:pbkdf2:4096 luks2:argon2id:512 \
	luks2:argon2id:4096; do
	IFS=: read -r type pb ss <<<"$combo"
	img=cs-$type-$pb-$ss.img
	log "cryptsetup $type $pb sector $ss"
	if [ "$pb" = pbkdf2 ]; then pbo=$PB_PBKDF2; else pbo=$PB_ARGON; fi
	sso=
	[ "$type" = luks2 ] && sso="--sector-size $ss"
	truncate -s 24M "$img"
	# shellcheck disable=SC2086
	cryptsetup luksFormat -q --type "$type" $pbo $sso --key-file k0 "$img"
	# shellcheck disable=SC2086
	cryptsetup luksAddKey -q $pbo --key-file k0 "$img" k1
	# shellcheck disable=SC2086
	cryptsetup luksAddKey -q $pbo --key-file k0 --key-slot 5 "$img" kbin
	for sk in 0:k0 1:k1 5:kbin; do
		$BS luks open --test-passphrase --key-slot "${sk%%:*}" --key-file "${sk#*:}" "$img" ||
			fail "$img: slot ${sk%%:*} does not unlock"
	done
	$BS luks open --test-passphrase --key-file kbin "$img" || fail "$img: any-slot unlock"
	echo "pass one" | $BS luks open --test-passphrase "$img" || fail "$img: passphrase on stdin"
	expect_error '^blkstack: No key available with this passphrase\.$' \
		$BS luks open --test-passphrase --key-file kw "$img"
	[ "$EXPECT_RC" = 2 ] || fail "wrong passphrase exit $EXPECT_RC, not 2"
	expect_error 'No key available' $BS luks open --test-passphrase --key-slot 1 --key-file k0 "$img"
	[ "$($BS luks uuid "$img")" = "$(cryptsetup luksUUID "$img")" ] || fail "$img: uuid"
	diff <(cryptsetup luksDump "$img") <($BS luks dump "$img") || fail "$img: dump differs from cryptsetup's"

	$BS luks open --key-file k1 "$img" vol
	[ "$(table_key vol)" = "$(cs_vk "$img" k0)" ] || fail "$img: key differs from cryptsetup's"
	$BS dm table vol | grep -q "crypt aes-xts-plain64 0\{128\} 0 $T/$img " ||
		fail "$img: table $($BS dm table vol)"
	if [ "$ss" = 4096 ]; then
		$BS dm table vol | grep -q ' 1 sector_size:4096$' || fail "$img: sector_size option"
	fi
	$BS dm info vol | grep -q "^UUID: CRYPT-${type^^}-$(cryptsetup luksUUID "$img" | tr -d -)-vol$" ||
		fail "$img: dm uuid"
	nbd_roundtrip vol 3145728 || fail "$img: data did not read back"
	$BS luks close vol
	# what blkstack wrote is the data cryptsetup's key decrypts (checked sector by sector in
	# luks_data.sh); here: the ciphertext is not the plaintext
	off=$(cryptsetup luksDump "$img" | awk '/Payload offset:|offset: .* \[bytes\]/ { print $NF == "[bytes]" ? $(NF-1) / 512 : $NF; exit }')
	cmp -s <(dd if="$img" bs=512 skip=$((off + 6144)) count=2048 status=none) rt.in &&
		fail "$img: plaintext on disk"
done

# every LUKS2 header size cryptsetup writes, key slots allocated out of order, a token
log "cryptsetup header sizes and slot order"
for ms in 16k 32k 64k 128k 256k 512k 1m 2m 4m; do
	truncate -s 24M hs.img
	cryptsetup luksFormat -q --type luks2 $PB_PBKDF2 --luks2-metadata-size $ms --key-slot 6 \
		--key-file k0 hs.img
	$BS luks open --test-passphrase --key-file k0 hs.img || fail "metadata size $ms"
	[ "$($BS luks dump hs.img | sed -n 's/^Metadata area: *\t//p')" = \
		"$(cryptsetup luksDump hs.img | sed -n 's/^Metadata area: *\t//p')" ] || fail "dump $ms"
done
cryptsetup luksAddKey -q $PB_PBKDF2 --key-file k0 --key-slot 2 hs.img k1
cryptsetup luksAddKey -q $PB_PBKDF2 --key-file k0 --key-slot 0 hs.img kbin
cryptsetup luksKillSlot -q --key-file k0 hs.img 2
cryptsetup luksAddKey -q $PB_PBKDF2 --key-file k0 --key-slot 9 hs.img k1
for sk in 6:k0 0:kbin 9:k1; do
	$BS luks open --test-passphrase --key-slot "${sk%%:*}" --key-file "${sk#*:}" hs.img ||
		fail "slot order: slot ${sk%%:*}"
done
printf '{"type":"x-blkstack-test","keyslots":["9"],"extra":{"a":[1,"two",null]}}' >tok.json
cryptsetup token import --json-file tok.json --token-id 3 hs.img
cryptsetup token export --token-id 3 hs.img >tok.before
$BS luks add-key $PB_PBKDF2 --key-file k0 hs.img k2
$BS luks kill-slot hs.img 0 k2
cryptsetup token export --token-id 3 hs.img >tok.after
cmp tok.before tok.after || fail "a token did not survive blkstack's rewrites"
$BS luks dump hs.img | grep -q '^  3: x-blkstack-test$' || fail "token not in the dump"
$BS luks kill-slot hs.img 9 k2
cryptsetup token export --token-id 3 hs.img | grep -q '"keyslots":\[\]' ||
	fail "a killed slot is still assigned to the token"

# ---- blkstack -> cryptsetup ------------------------------------------------------------------
for combo in luks1:pbkdf2:512 luks2:pbkdf2:512 luks2:pbkdf2:4096 luks2:argon2id:512 \
	luks2:argon2id:4096; do
	IFS=: read -r type pb ss <<<"$combo"
	img=bs-$type-$pb-$ss.img
	log "blkstack $type $pb sector $ss"
	if [ "$pb" = pbkdf2 ]; then pbo=$PB_PBKDF2; else pbo=$PB_ARGON; fi
	sso=
	[ "$type" = luks2 ] && sso="--sector-size $ss"
	truncate -s 24M "$img"
	# shellcheck disable=SC2086
	$BS luks format -q --type "$type" $pbo $sso --key-file k0 "$img"
	cryptsetup isLuks --type "$type" "$img" || fail "$img: cryptsetup isLuks"
	cryptsetup luksDump "$img" >dump.txt || fail "$img: cryptsetup luksDump"
	if [ "$type" = luks2 ]; then
		grep -q "sector: $ss \[bytes\]" dump.txt || fail "$img: sector size"
		grep -q "PBKDF: *$pb$" dump.txt || fail "$img: pbkdf"
		grep -q "offset: 16777216 \[bytes\]" dump.txt || fail "$img: data offset"
	else
		grep -q "^Payload offset:	4096$" dump.txt || fail "$img: payload offset"
	fi
	cryptsetup open --test-passphrase --key-file k0 "$img" || fail "$img: slot 0 for cryptsetup"
	diff dump.txt <($BS luks dump "$img") || fail "$img: dump differs from cryptsetup's"
	# shellcheck disable=SC2086
	$BS luks add-key $pbo --key-file k0 "$img" k1
	# shellcheck disable=SC2086
	$BS luks add-key $pbo --key-file k1 --key-slot 3 "$img" kbin
	printf 'pass zero\nstdin pass\n' | $BS luks add-key $PB_PBKDF2 "$img" ||
		fail "$img: add-key with both passphrases on stdin"
	for sk in 0:k0 1:k1 3:kbin; do
		cryptsetup open --test-passphrase --key-slot "${sk%%:*}" --key-file "${sk#*:}" "$img" ||
			fail "$img: cryptsetup cannot open slot ${sk%%:*}"
	done
	echo "stdin pass" | cryptsetup open --test-passphrase --key-slot 2 "$img" ||
		fail "$img: slot 2 (stdin passphrase)"
	vk=$(cs_vk "$img" kbin)
	[ ${#vk} = 128 ] || fail "$img: no key from cryptsetup"
	[ "$(bs_vk "$img" k1)" = "$vk" ] || fail "$img: dump --dump-volume-key differs from cryptsetup"
	$BS luks open --key-file k0 "$img" vol
	[ "$(table_key vol)" = "$vk" ] || fail "$img: table key differs from cryptsetup's"
	$BS dm table vol | grep -q "crypt aes-xts-plain64 0\{128\} 0" || fail "$img: key not masked"
	$BS luks close vol
done

# the defaults cryptsetup picks (sector size for an image file, cipher, key size, hash)
truncate -s 24M def-cs.img def-bs.img
cryptsetup luksFormat -q $PB_ARGON --key-file k0 def-cs.img
$BS luks format -q $PB_ARGON --key-file k0 def-bs.img
strip() { cryptsetup luksDump "$1" | grep -v 'UUID\|Salt\|^	            \|Digest:\|Iterations\|Epoch'; }
diff <(strip def-cs.img) <(strip def-bs.img) || fail "defaults differ from cryptsetup's"
truncate -s 24M def1-cs.img def1-bs.img
cryptsetup luksFormat -q --type luks1 $PB_PBKDF2 --key-file k0 def1-cs.img
$BS luks format -q --type luks1 $PB_PBKDF2 --key-file k0 def1-bs.img
strip1() { cryptsetup luksDump "$1" | grep -v 'UUID\|[Ss]alt\|^               \|^	               \|MK digest\|for '; }
diff <(strip1 def1-cs.img) <(strip1 def1-bs.img) || fail "LUKS1 defaults differ from cryptsetup's"

# format options cryptsetup must see
log "format options"
truncate -s 24M opt.img
$BS luks format -q $PB_ARGON --label my-label --subsystem my-sub \
	--uuid 11111111-2222-4333-8444-555555555555 --luks2-metadata-size 64k \
	--luks2-keyslots-size 1m --offset 4096 --cipher aes-cbc-essiv:sha256 --key-size 256 \
	--hash sha512 --key-file k0 opt.img
cryptsetup luksDump opt.img >dump.txt
for want in 'Label: *	my-label$' 'Subsystem: *	my-sub$' 'Metadata area: *	65536 \[bytes\]$' \
	'Keyslots area: *	1048576 \[bytes\]$' 'offset: 2097152 \[bytes\]$' \
	'cipher: aes-cbc-essiv:sha256$' 'AF hash: *sha512$' 'Key: *256 bits$' \
	'UUID: *	11111111-2222-4333-8444-555555555555$'; do
	grep -q "$want" dump.txt || fail "format options: no /$want/ in cryptsetup's dump"
done
cryptsetup open --test-passphrase --key-file k0 opt.img || fail "format options: open"
truncate -s 24M opt1.img
$BS luks format -q --type luks1 $PB_PBKDF2 --offset 8192 --cipher aes-cbc-essiv:sha256 \
	--key-size 128 --hash sha1 --key-file k0 opt1.img
cryptsetup luksDump opt1.img >dump.txt
for want in 'Payload offset:	8192$' 'Cipher mode:   	cbc-essiv:sha256$' 'Hash spec:     	sha1$' \
	'MK bits:       	128$'; do
	grep -q "$want" dump.txt || fail "LUKS1 format options: no /$want/"
done
cryptsetup open --test-passphrase --key-file k0 opt1.img || fail "LUKS1 format options: open"

# key files: standard input, --keyfile-offset/--keyfile-size, --new-keyfile-*
log "key files"
truncate -s 24M kf.img
cat k0 | $BS luks format -q $PB_PBKDF2 --key-file - kf.img
cryptsetup open --test-passphrase --key-file k0 kf.img || fail "format --key-file -"
{ printf 'XXXXX'; cat k0; printf 'YYYY'; } >kpad
$BS luks open --test-passphrase --key-file kpad --keyfile-offset 5 --keyfile-size 9 kf.img ||
	fail "--keyfile-offset/--keyfile-size"
expect_error 'No key available' $BS luks open --test-passphrase --key-file kpad --keyfile-offset 4 --keyfile-size 9 kf.img
expect_error 'cannot read 99 bytes' $BS luks open --test-passphrase --key-file kpad --keyfile-size 99 kf.img
head -c 3 /dev/urandom >knew
printf 'new key bytes' >>knew
$BS luks add-key $PB_PBKDF2 --key-file kpad --keyfile-offset 5 --keyfile-size 9 \
	--new-keyfile-offset 3 --new-keyfile-size 8 kf.img knew
cryptsetup open --test-passphrase --key-file knew --keyfile-offset 3 --keyfile-size 8 kf.img ||
	fail "cryptsetup: --new-keyfile-offset/--new-keyfile-size"
cat k0 | $BS luks open --test-passphrase --key-file - kf.img || fail "open --key-file -"

# open options and resize
log "open options, resize"
truncate -s 24M rs.img
$BS luks format -q $PB_PBKDF2 --sector-size 4096 --key-file k0 rs.img
$BS luks open --allow-discards --readonly --key-file k0 rs.img vol
$BS dm table vol | grep -q ' 2 allow_discards sector_size:4096$' || fail "allow-discards: $($BS dm table vol)"
$BS dm info vol | grep -q 'READ-ONLY' || fail "--readonly"
$BS luks close vol
$BS luks open --key-file k0 rs.img vol
[ "$($BS dm table vol | cut -d' ' -f2)" = 16384 ] || fail "size before resize"
truncate -s 40M rs.img
$BS luks resize vol
[ "$($BS dm table vol | cut -d' ' -f2)" = 49152 ] || fail "resize to the device: $($BS dm table vol)"
[ "$(table_key vol)" = "$(cs_vk rs.img k0)" ] || fail "resize changed the key"
$BS luks resize --size 8192 vol
[ "$($BS dm table vol | cut -d' ' -f2)" = 8192 ] || fail "resize --size"
expect_error 'not a multiple of the sector size' $BS luks resize --size 8193 vol
expect_error 'larger than the data device' $BS luks resize --size 99999999 vol
$BS dm info vol | grep -q 'State: *ACTIVE$' || fail "resize left the device suspended"
$BS luks close vol

# ---- key management, cryptsetup as the oracle ---------------------------------------------
for type in luks1 luks2; do
	img=km-$type.img
	log "key management $type"
	truncate -s 24M "$img"
	# shellcheck disable=SC2086
	$BS luks format -q --type $type $PB_PBKDF2 --key-file k0 "$img"
	# shellcheck disable=SC2086
	$BS luks add-key $PB_PBKDF2 --key-file k0 "$img" k1
	# shellcheck disable=SC2086
	$BS luks add-key $PB_PBKDF2 --key-file k0 --key-slot 4 "$img" kbin
	slots() { cryptsetup luksDump "$1" | sed -n 's/^Key Slot \([0-7]\): ENABLED$/\1/p; s/^  \([0-9]*\): luks2$/\1/p' | tr '\n' ' '; }
	[ "$(slots "$img")" = "0 1 4 " ] || fail "$img: slots $(slots "$img")"

	# wrong passphrases exit 2 and change nothing
	cp "$img" before.img
	expect_error 'No key available' $BS luks remove-key "$img" kw
	[ "$EXPECT_RC" = 2 ] || fail "remove-key wrong passphrase exit $EXPECT_RC"
	expect_error 'No key available' $BS luks kill-slot "$img" 1 kw
	[ "$EXPECT_RC" = 2 ] || fail "kill-slot wrong passphrase exit $EXPECT_RC"
	expect_error 'No key available' $BS luks change-key --key-file kw "$img" k2
	expect_error 'No key available' $BS luks add-key --key-file kw "$img" k2
	expect_error 'Keyslot 6 is not active' $BS luks kill-slot "$img" 6 k0
	expect_error 'Key slot 4 is full' $BS luks add-key --key-file k0 --key-slot 4 "$img" k2
	expect_error 'invalid --key-slot' $BS luks add-key --key-file k0 --key-slot 99 "$img" k2
	expect_error 'Wrong LUKS UUID format' $BS luks uuid --uuid nonsense "$img"
	cmp -s before.img "$img" || fail "$img: a refused command changed the image"

	# remove-key
	$BS luks remove-key "$img" k1
	[ "$(slots "$img")" = "0 4 " ] || fail "$img: remove-key left $(slots "$img")"
	cryptsetup open --test-passphrase --key-file k1 "$img" 2>/dev/null && fail "removed key opens"
	# change-key (LUKS2 keeps the slot, LUKS1 moves to the first free one)
	# shellcheck disable=SC2086
	$BS luks change-key $PB_PBKDF2 --key-file k0 "$img" k2
	cryptsetup open --test-passphrase --key-file k0 "$img" 2>/dev/null && fail "old passphrase opens"
	if [ $type = luks2 ]; then
		cryptsetup open --test-passphrase --key-slot 0 --key-file k2 "$img" || fail "change-key lost slot 0"
	else
		cryptsetup open --test-passphrase --key-slot 1 --key-file k2 "$img" || fail "LUKS1 change-key slot"
	fi
	# kill-slot, verified by a remaining passphrase
	$BS luks kill-slot "$img" 4 k2
	[ "$(slots "$img")" = "$([ $type = luks2 ] && echo "0 " || echo "1 ")" ] ||
		fail "$img: kill-slot left $(slots "$img")"

	# header backup: identical to cryptsetup's, restorable by both
	$BS luks header-backup "$img" --header-backup-file hb-$type
	cryptsetup luksHeaderBackup "$img" --header-backup-file cshb-$type
	cmp hb-$type cshb-$type || fail "$img: header backup differs from cryptsetup's"
	expect_error 'already exists' $BS luks header-backup "$img" --header-backup-file hb-$type
	cp "$img" good.img
	dd if=/dev/zero of="$img" bs=4096 count=8 conv=notrunc status=none
	$BS luks is-luks "$img" && fail "$img: still LUKS after wiping"
	$BS luks header-restore -q "$img" --header-backup-file hb-$type
	cmp -s good.img "$img" || fail "$img: restore differs"
	cryptsetup open --test-passphrase --key-file k2 "$img" || fail "$img: restored header"
	dd if=/dev/zero of="$img" bs=4096 count=8 conv=notrunc status=none
	cryptsetup luksHeaderRestore -q "$img" --header-backup-file hb-$type
	$BS luks open --test-passphrase --key-file k2 "$img" || fail "$img: cryptsetup-restored backup"
	expect_error 'not usable' $BS luks header-restore -q "$img" --header-backup-file k0

	# uuid
	$BS luks uuid --uuid 01234567-89AB-4CDE-8F01-23456789ABCD "$img"
	[ "$(cryptsetup luksUUID "$img")" = 01234567-89ab-4cde-8f01-23456789abcd ] || fail "uuid set"
	[ "$($BS luks uuid "$img")" = 01234567-89ab-4cde-8f01-23456789abcd ] || fail "uuid get"

	# is-luks
	$BS luks is-luks "$img" || fail "is-luks"
	$BS luks is-luks --type $type "$img" || fail "is-luks --type"
	$BS luks is-luks --type $([ $type = luks1 ] && echo luks2 || echo luks1) "$img" &&
		fail "is-luks --type other"
	cryptsetup isLuks "$img" || fail "cryptsetup isLuks"
done
truncate -s 8M plain.img
$BS luks is-luks plain.img && fail "is-luks on zeroes"
rc=0
$BS luks is-luks missing.img || rc=$?
[ $rc = 4 ] || fail "is-luks on a missing device: exit $rc"

# ---- detached headers ----------------------------------------------------------------------
for type in luks1 luks2; do
	log "detached header $type"
	truncate -s 8M data-$type.img
	rm -f hdr-$type.img
	# shellcheck disable=SC2086
	$BS luks format -q --type $type $PB_PBKDF2 --header hdr-$type.img --key-file k0 data-$type.img
	[ "$(stat -c %a hdr-$type.img)" = 600 ] || fail "header file mode"
	cmp -s data-$type.img <(head -c 8388608 /dev/zero) || fail "format wrote to the data device"
	cryptsetup luksDump hdr-$type.img >/dev/null || fail "cryptsetup cannot read the detached header"
	cryptsetup open --test-passphrase --header hdr-$type.img --key-file k0 data-$type.img ||
		fail "cryptsetup: detached header does not open"
	$BS luks open --header hdr-$type.img --key-file k0 data-$type.img vol
	$BS dm table vol | grep -q " $T/data-$type.img 0\( \|\$\)" || fail "detached: data offset 0"
	[ "$(table_key vol)" = "$(cs_vk hdr-$type.img k0)" ] || fail "detached: key"
	nbd_roundtrip vol 0 || fail "detached: data"
	$BS luks close vol
	# its data starts at 0: without --header the header device itself would be mapped
	expect_error 'meant to be detached' $BS luks open --key-file k0 hdr-$type.img vol
done
# a detached header cryptsetup made
truncate -s 8M csdata.img
cryptsetup luksFormat -q --type luks2 $PB_ARGON --header cshdr.img --offset 2048 --key-file k0 csdata.img
$BS luks open --header cshdr.img --key-file k0 csdata.img vol
$BS dm table vol | grep -q "^0 14336 crypt .* $T/csdata.img 2048" || fail "cryptsetup detached: table"
$BS luks close vol

# ---- a damaged primary LUKS2 header: read from the secondary, repaired on write -------------
log "damaged primary header"
truncate -s 24M dmg.img
cryptsetup luksFormat -q --type luks2 $PB_PBKDF2 --key-file k0 dmg.img
printf 'X' | dd of=dmg.img bs=1 seek=5000 conv=notrunc status=none # inside the primary JSON area
$BS luks open --test-passphrase --key-file k0 dmg.img || fail "damaged primary: no fallback"
$BS luks open --readonly --key-file k0 dmg.img vol
$BS luks close vol
$BS luks add-key $PB_PBKDF2 --key-file k0 dmg.img k1 # a write: both copies rewritten
cryptsetup luksDump dmg.img | grep -q '^  1: luks2' || fail "cryptsetup does not see the new slot"
cmp -s <(dd if=dmg.img bs=4096 skip=1 count=3 status=none) \
	<(dd if=dmg.img bs=4096 skip=5 count=3 status=none) || fail "copies differ after repair"
# both copies damaged: refused
printf 'X' | dd of=dmg.img bs=1 seek=5000 conv=notrunc status=none
printf 'X' | dd of=dmg.img bs=1 seek=21384 conv=notrunc status=none
expect_error 'LUKS2 header is damaged: checksum mismatch \(both copies\)' \
	$BS luks open --test-passphrase --key-file k0 dmg.img

# ---- bad input: one line, the right exit code, nothing changed ------------------------------
log "bad input"
before=$($BS dm table)
cp bs-luks2-pbkdf2-512.img before.img
expect_error 'invalid --key-size' $BS luks format -q --key-size 100 --key-file k0 before.img
expect_error 'invalid --pbkdf' $BS luks format -q --pbkdf scrypt --key-file k0 before.img
expect_error 'not supported for LUKS1' $BS luks format -q --type luks1 --pbkdf argon2id --key-file k0 before.img
expect_error 'too low' $BS luks format -q --pbkdf pbkdf2 --pbkdf-force-iterations 5 --key-file k0 before.img
expect_error 'invalid --sector-size' $BS luks format -q --sector-size 1000 --key-file k0 before.img
expect_error 'unsupported cipher' $BS luks format -q --cipher serpent-xts-plain64 --key-file k0 before.img
truncate -s 20971008 odd.img # not a multiple of 4096 after the data offset
expect_error 'not aligned to requested sector size' $BS luks format -q $PB_PBKDF2 --sector-size 4096 --key-file k0 odd.img
cmp -s before.img bs-luks2-pbkdf2-512.img || fail "a refused format changed the image"
expect_error 'does not exist or access denied' $BS luks open --key-file k0 nosuch.img vol
[ "$EXPECT_RC" = 4 ] || fail "missing device exit $EXPECT_RC, not 4"
expect_error 'is not a valid LUKS device' $BS luks open --key-file k0 plain.img vol
expect_error 'is not a valid LUKS device' $BS luks dump plain.img
$BS luks open --key-file k0 bs-luks2-pbkdf2-512.img vol
expect_error 'Device vol already exists' $BS luks open --key-file k0 bs-luks2-pbkdf2-512.img vol
[ "$EXPECT_RC" = 5 ] || fail "existing device exit $EXPECT_RC, not 5"
$BS dm create z --table "0 8 zero"
expect_error 'not a crypt device' $BS luks close z
expect_error 'Device nosuch is not active' $BS luks close nosuch
[ "$EXPECT_RC" = 4 ] || fail "close of a missing device exit $EXPECT_RC"
$BS dm remove z
$BS luks close vol
expect_error 'invalid device name' $BS luks open --key-file k0 bs-luks2-pbkdf2-512.img "a/b"
expect_error 'unknown or incomplete option' $BS luks open --bogus x y
expect_error 'missing arguments' $BS luks open --key-file k0 bs-luks2-pbkdf2-512.img
[ "$($BS dm table)" = "$before" ] || fail "a refused command changed the daemon"
# a reencryption in progress (cryptsetup's requirement flag) is refused, clearly
truncate -s 40M re.img
cryptsetup luksFormat -q --type luks2 $PB_PBKDF2 --key-file k0 re.img
cryptsetup reencrypt --init-only -q $PB_PBKDF2 --key-file k0 re.img
cp re.img before.img
expect_error 'requirement "online-reencrypt-v2" is not supported \(a reencryption is in progress' \
	$BS luks open --key-file k0 re.img vol
expect_error 'online-reencrypt-v2' $BS luks add-key --key-file k0 re.img k1
cmp -s re.img before.img || fail "a refused command changed the reencrypting image"
# a detached header file a refused format created is removed again
expect_error 'unsupported cipher' $BS luks format -q --cipher serpent-xts-plain64 --header newhdr.img --key-file k0 plain.img
rm -f newhdr.img
expect_error 'too low' $BS luks format -q --pbkdf-force-iterations 2 --header newhdr.img --key-file k0 plain.img
[ -e newhdr.img ] && fail "a refused format left its header file"
# passphrases never reach the command line: there is no option for one
expect_error 'unknown or incomplete option' $BS luks open --password x bs-luks2-pbkdf2-512.img vol

stop_daemon
log "ok"
