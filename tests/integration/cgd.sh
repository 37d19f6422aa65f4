#!/bin/bash
# blkstack cgd generate/open/close: NetBSD cgd volumes and cgdconfig parameters files.
#   - volumes built from NetBSD's own test vectors (tests/fixtures/cgd, make_vectors.py: the
#     ciphertext t_cgd_aes.c expects on disk for aes-cbc 128/192/256 with encblkno1 and
#     encblkno8, and aes-xts with IEEE 1619 vectors 4-6) open with their parameters files and
#     read the plaintext NetBSD wrote;
#   - generated parameters (storedkey, pkcs5_pbkdf2/sha1 with a passphrase, encblkno8,
#     re-enter, randomkey) open, take data through NBD and give it back after a reopen, and
#     what blkstack wrote decrypts with python3-cryptography (helpers/cgd_decrypt.py);
#   - bad arguments and hostile parameters files are refused with one line, creating nothing;
#     keys never reach the daemon's log.
# timeout: 120
source "$(dirname "$0")/../lib/common.sh"

F=$TOP/tests/fixtures/cgd
DEC="$PY $TOP/tests/integration/helpers/cgd_decrypt.py"
cd "$T"
start_daemon

mapped_sha() { nbdcopy "$(uri "$1")" - | sha256sum | cut -d' ' -f1; }
sha() { sha256sum <"$1" | cut -d' ' -f1; }

# --- NetBSD's vectors --------------------------------------------------------------------
n=0
while read -r vol want; do
	[ "${vol#\#}" = "$vol" ] || continue
	cp "$F/$vol.img" .
	$BS cgd open "$vol" "$vol.img" "$F/$vol.params"
	[ "$(mapped_sha "$vol")" = "$want" ] || fail "$vol: not the plaintext NetBSD's test wrote"
	$BS cgd close "$vol"
	n=$((n + 1))
done <"$F/expected.txt"
[ $n -eq 7 ] || fail "expected 7 NetBSD volumes, found $n"
$BS dm ls | grep -q . && [ "$($BS dm ls)" != "No devices found" ] && fail "devices left behind"

# --- generated parameters ------------------------------------------------------------------
randfile data.bin 2
mkimg 4M v1.img v2.img v3.img v4.img
# storedkey, aes-cbc 192 (the brief's example), cgdconfig's layout
$BS cgd generate -o s.params aes-cbc 192
[ "$(stat -c %a s.params)" = 600 ] || fail "a parameters file with a key is not private"
[ "$(head -4 s.params)" = "$(printf 'algorithm aes-cbc;\niv-method encblkno1;\nkeylength 192;\nverify_method none;')" ] ||
	fail "generate layout: $(cat s.params)"
grep -Eq '^keygen storedkey key [A-Za-z0-9+/]{30} \\$' s.params || fail "storedkey line"
grep -Eq '^ {21}[A-Za-z0-9+/=]{10};$' s.params || fail "storedkey continuation"
$BS cgd open v1 v1.img s.params
[ "$($BS dm table v1)" = "0 8192 crypt aes-cbc-encblkno1 $(printf '0%.0s' {1..48}) 0 $T/v1.img 0" ] ||
	fail "table of v1: $($BS dm table v1)"
$BS dm info v1 | grep -q 'UUID: *CGD-v1$' || fail "uuid of v1"
nbdcopy data.bin "$(uri v1)"
$BS cgd close v1
[ "$($DEC v1.img s.params 2097152)" = "$(sha data.bin)" ] ||
	fail "python does not decrypt what blkstack wrote (aes-cbc 192 storedkey)"
$BS cgd open --readonly v1 v1.img s.params
[ "$(nbdcopy "$(uri v1)" - | head -c 2097152 | sha256sum | cut -d' ' -f1)" = "$(sha data.bin)" ] ||
	fail "reopened volume lost its data"
$BS cgd close v1

# pkcs5_pbkdf2/sha1 with a passphrase, aes-xts 512
$BS cgd generate -o p.params -k pkcs5_pbkdf2/sha1 -i 1000 aes-xts 512
grep -q '^keygen pkcs5_pbkdf2/sha1 {$' p.params && grep -q '^        iterations 1000;$' p.params &&
	grep -Eq '^        salt [A-Za-z0-9+/=]{28};$' p.params || fail "pbkdf2 layout: $(cat p.params)"
printf 'open sesame\n' | $BS cgd open v2 v2.img p.params
$BS dm table v2 | grep -q ' crypt aes-xts-plain64 ' || fail "table of v2"
nbdcopy data.bin "$(uri v2)"
$BS cgd close v2
[ "$($DEC v2.img p.params 2097152 'open sesame')" = "$(sha data.bin)" ] ||
	fail "python does not decrypt what blkstack wrote (aes-xts 512 pbkdf2)"
printf 'open sesame\n' | $BS cgd open v2 v2.img p.params
[ "$(nbdcopy "$(uri v2)" - | head -c 2097152 | sha256sum | cut -d' ' -f1)" = "$(sha data.bin)" ] ||
	fail "passphrase volume lost its data"
$BS cgd close v2
printf 'open says me\n' | $BS cgd open v2 v2.img p.params # verify_method none: opens anyway
[ "$(nbdcopy "$(uri v2)" - | head -c 2097152 | sha256sum | cut -d' ' -f1)" != "$(sha data.bin)" ] ||
	fail "a wrong passphrase read the data"
$BS cgd close v2

# encblkno8 (cgd's legacy IV method)
$BS cgd generate -o e8.params --iv-method encblkno8 aes-cbc 256
$BS cgd open v3 v3.img e8.params
$BS dm table v3 | grep -q ' crypt aes-cbc-encblkno8 ' || fail "table of v3"
nbdcopy data.bin "$(uri v3)"
$BS cgd close v3
[ "$($DEC v3.img e8.params 2097152)" = "$(sha data.bin)" ] ||
	fail "python does not decrypt what blkstack wrote (encblkno8)"

# verify_method re-enter asks twice
$BS cgd generate -o r.params -k pkcs5_pbkdf2/sha1 -i 100 -V re-enter aes-cbc
grep -q '^verify_method re-enter;$' r.params || fail "re-enter not written"
printf 'a b\na b\n' | $BS cgd open v4 v4.img r.params
$BS cgd close v4
printf 'a b\na c\n' | expect_error 'verification failed: the passphrases do not match' \
	$BS cgd open v4 v4.img r.params

# randomkey: a new key every time
$BS cgd generate -o rk.params -k randomkey aes-xts
grep -q '^keygen randomkey;$' rk.params || fail "randomkey line"
$BS cgd open v4 v4.img rk.params
k1=$($BS dm table --showkeys v4 | cut -d' ' -f5)
$BS cgd close v4
$BS cgd open v4 v4.img rk.params
[ "$($BS dm table --showkeys v4 | cut -d' ' -f5)" != "$k1" ] || fail "randomkey repeated a key"
$BS cgd close v4

# --- refusals: one line, nothing created --------------------------------------------------
expect_error 'algorithm "3des-cbc" is not supported' $BS cgd generate 3des-cbc 192
expect_error 'keylength 100 is not valid for aes-cbc' $BS cgd generate aes-cbc 100
expect_error 'keylength 128 is not valid for aes-xts' $BS cgd generate aes-xts 128
expect_error 'invalid key length "12x"' $BS cgd generate aes-cbc 12x
expect_error 'unknown keygen method "frob"' $BS cgd generate -k frob aes-cbc
expect_error 'keygen shell_cmd is not supported' $BS cgd generate -k shell_cmd aes-cbc
expect_error 'iv-method "plain64" is not supported' $BS cgd generate --iv-method plain64 aes-cbc
expect_error 'verify method "disklabel" is not supported' $BS cgd generate -V disklabel aes-cbc
expect_error 'invalid iteration count' $BS cgd generate -k pkcs5_pbkdf2/sha1 -i 0 aes-cbc
expect_error '-i is for pkcs5_pbkdf2/sha1' $BS cgd generate -i 5 aes-cbc
expect_error 's.params exists' $BS cgd generate -o s.params aes-cbc
expect_error 'missing arguments' $BS cgd generate
bad() { # pattern params-text
	printf '%b' "$2" >bad.params
	expect_error "$1" $BS cgd open bad v1.img bad.params
}
bad 'line 2: unknown statement' 'algorithm aes-cbc;\nfrobnicate;\nkeygen randomkey;\n'
bad 'the stored key has 192 bits but keylength is 256' \
	"algorithm aes-cbc;\nkeylength 256;\n$(grep -A1 storedkey s.params | tr -d '\\\n ' | sed 's/keygenstoredkeykey/keygen storedkey key /')\n"
bad 'algorithm "blowfish-cbc" is not supported' 'algorithm blowfish-cbc;\nkeygen randomkey;\n'
bad 'verify_method ffs is not supported' 'algorithm aes-cbc;\nverify_method ffs;\nkeygen randomkey;\n'
bad 'keygen shell_cmd is not supported' 'algorithm aes-cbc;\nkeygen shell_cmd cmd /bin/false;\n'
bad 'invalid base64' 'algorithm aes-cbc;\nkeygen storedkey key AAAAgAB*;\n'
bad 'no keygen statement' 'algorithm aes-cbc;\n'
bad 'NUL byte' 'algorithm aes-cbc;\0\n'
expect_error 'cannot open nosuch.params' $BS cgd open bad v1.img nosuch.params
expect_error 'cannot open nosuch.img' $BS cgd open bad nosuch.img s.params
expect_error 'invalid device name' $BS cgd open a/b v1.img s.params
expect_error 'only -r applies' $BS cgd open -k storedkey bad v1.img s.params
expect_error 'missing arguments' $BS cgd open bad v1.img
expect_error 'empty passphrase' $BS cgd open bad v1.img p.params </dev/null
$BS cgd open taken v1.img s.params
expect_error 'already exists' $BS cgd open taken v1.img s.params
$BS dm create lin --table "0 8 zero"
expect_error 'device lin is not a cgd device' $BS cgd close lin
expect_error 'device nosuch is not active' $BS cgd close nosuch
expect_error 'unknown command' $BS cgd frobnicate
[ "$($BS dm ls | wc -l)" -eq 2 ] || fail "a refused command left a device behind"
$BS cgd close taken
$BS dm remove lin

# the daemon never logged a key (the stored key of s.params, in hex)
key=$($PY -c 'import base64,re,sys; t=open(sys.argv[1]).read().replace("\\\n"," "); b=re.search(r"\skey\s+([^;]+);", t).group(1); print(base64.b64decode("".join(b.split()))[4:12].hex())' s.params)
! grep -q "$key" "$T/daemon.log" || fail "the daemon log holds a key"

stop_daemon
log "ok"
