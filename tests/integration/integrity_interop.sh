#!/bin/bash
# timeout: 240
# dm-integrity both ways with Linux and integritysetup 2.6:
#   - images the kernel formatted and filled (tests/fixtures/integrity, made in the linux-lab
#     VM) open in blkstack with the recorded options and read back the kernel's sha256; the
#     table, status and integritysetup-status text are the kernel's; a journal the kernel
#     committed but never wrote back is replayed; a dirty bitmap is recalculated, only where
#     it is dirty;
#   - `blkstack integrity format` writes the superblocks the kernel wrote for the same sizes
#     and options (`integritysetup dump` text identical);
#   - images blkstack formats and fills (crc32c, sha256, hmac-sha256; 512 and 4096-byte
#     sectors; journal and bitmap mode) read back, `integritysetup dump` reads them, and an
#     independent checker (helpers/integrity_check.py, hashlib) verifies every tag;
#   - bad input is refused with one line and changes nothing.
# When the host's integritysetup can format (a kernel with dm), its images are opened too.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
F=$TOP/tests/fixtures/integrity
CHK="$PY $TOP/tests/integration/helpers/integrity_check.py"
command -v integritysetup >/dev/null || skip "integritysetup (cryptsetup-bin) is not installed"
start_daemon

val() { sed -n "s/^$2=//p" "$F/$1.txt"; }
sum_of() { nbdcopy "$(uri "$1")" - | sha256sum | cut -c1-64; }

# open options for fixture NAME (mode and algorithm as the kernel had them)
fixture_opts() {
	local n=$1 o="--integrity $(val "$1" alg)"
	[ -n "$(val "$n" key)" ] && o="$o --integrity-key-file $F/key.bin"
	case $(val "$n" mode) in
	B) o="$o --integrity-bitmap-mode" ;;
	D) o="$o --integrity-no-journal" ;;
	esac
	local oo
	oo=$(val "$n" open_options)
	[ "$oo" = - ] && oo=
	echo "$o ${oo//=/ }"
}

# ---- the kernel's images ------------------------------------------------------------------
for t in "$F"/*.txt; do
	n=$(basename "$t" .txt)
	[ -f "$F/$n.img.xz" ] || continue # formats.txt, lab-check.txt
	xz -dc "$F/$n.img.xz" >"$n.img"
	dev=$n.img
	extra=
	if [ -f "$F/$n.meta.img.xz" ]; then
		xz -dc "$F/$n.meta.img.xz" >"$n.meta.img"
		dev=$n.meta.img
		extra="--data-device $n.img"
	fi
	if [ "$n" = dirty-journal ]; then
		# the snapshot really needs the replay: committed entries, old data in place
		[ "$($CHK journal "$n.img")" -gt 100 ] || fail "dirty-journal: no committed entries"
		off=$($CHK dataoff "$n.img" 2051)
		cmp -s <(dd if="$n.img" bs=512 skip=$((off / 512)) count=1 status=none) \
			<($PY "$F/pattern.py" 1 extra) && fail "dirty-journal: data already in place"
	fi
	if [ "$n" = dirty-bitmap ]; then
		# a wrong tag inside the dirty region (recalculated away) and one outside it
		# (still wrong: only dirty regions are recalculated)
		cp "$n.img" "$n.corrupt.img"
		for s in 2060 5000; do
			off=$($CHK tagoff "$n.img" $s)
			printf '\xde\xad\xbe\xef' | dd of="$n.corrupt.img" bs=1 seek="$off" conv=notrunc status=none
		done
		# shellcheck disable=SC2046
		$BS integrity open "$n.corrupt.img" dbc $(fixture_opts "$n")
		for _ in $(seq 100); do
			[ "$($BS dm status dbc | awk '{print $6}')" = "$(val "$n" data_sectors)" ] && break
			sleep 0.1
		done
		[ "$($BS dm status dbc | awk '{print $6}')" = "$(val "$n" data_sectors)" ] ||
			fail "dirty-bitmap: recalculation did not finish: $($BS dm status dbc)"
		$PY - "$NBD_SOCK" <<'PY' || fail "dirty-bitmap: the dirty/clean regions were not told apart"
import nbd, sys
h = nbd.NBD(); h.set_export_name("dbc"); h.connect_unix(sys.argv[1])
h.pread(512, 2060 * 512)                       # dirty region: tag recalculated
try:
    h.pread(512, 5000 * 512)                   # clean region: still a mismatch
    sys.exit("sector 5000 read without error")
except nbd.Error:
    pass
h.shutdown()
PY
		[ "$($BS dm status dbc | awk '{print $4}')" -ge 1 ] || fail "dirty-bitmap: mismatch not counted"
		grep -q "checksum failed at sector 5000" "$T/daemon.log" || fail "mismatch not logged"
		$BS integrity close dbc
	fi
	# shellcheck disable=SC2046,SC2086
	$BS integrity open "$dev" "$n" $(fixture_opts "$n") $extra || fail "$n: open failed"
	[ "$(sum_of "$n")" = "$(val "$n" sha256)" ] || fail "$n: data differs from what Linux wrote"
	if [[ $n != dirty-* ]]; then
		want=$(val "$n" table)
		got=$($BS dm table --showkeys "$n" | sed "s| $T/$n.img 0 | DEV 0 |; s|meta_device:$T/$n.meta.img|meta_device:META|")
		[ "$got" = "$want" ] || fail "$n: table differs from Linux's: $got / $want"
		[ "$($BS dm status "$n")" = "$(val "$n" dmstatus)" ] || fail "$n: status differs from Linux's"
		diff <($BS integrity status "$n" | sed "s|$T/[^ ]*|DEV|") \
			<(sed -n 's/^status://p' "$F/$n.txt") || fail "$n: integrity status differs"
	fi
	# blkstack writes over everything; integritysetup and the checker read the result
	size=$(($(val "$n" data_sectors) * 512))
	head -c "$size" /dev/urandom >"$n.new"
	nbdcopy "$n.new" "$(uri "$n")"
	[ "$(sum_of "$n")" = "$(sha256sum <"$n.new" | cut -c1-64)" ] || fail "$n: read back differs"
	$BS integrity close "$n"
	key=$(val "$n" key)
	if [ -n "$extra" ]; then
		$CHK verify "$n.img" "$(val "$n" alg)" $key --meta "$n.meta.img" >chk.out || { cat chk.out; fail "$n: tags"; }
		cmp <($CHK data "$n.img" --meta "$n.meta.img") "$n.new" || fail "$n: data not in place"
	else
		$CHK verify "$n.img" "$(val "$n" alg)" $key >chk.out || { cat chk.out; fail "$n: tags"; }
		cmp <($CHK data "$n.img") "$n.new" || fail "$n: data not in place"
	fi
	integritysetup dump "$dev" >/dev/null || fail "$n: integritysetup dump refuses it"
	rm -f "$n.img" "$n.meta.img" "$n.new" "$n.corrupt.img"
	log "$n: ok ($(cat chk.out))"
done
grep -q "journal replayed: 136 blocks" "$T/daemon.log" || fail "the kernel's journal was not replayed"

# ---- superblocks blkstack formats are the kernel's -------------------------------------------------
spec=
while IFS= read -r line; do
	[[ $line == "== "* ]] || continue
	spec=${line#== }
	size=${spec%%|*}
	opts=${spec#*|}
	awk -v s="$line" '$0 == s { f = 1; next } f && /^== / { exit } f' "$F/formats.txt" >want.txt
	rm -f x.img m.img d.img
	if [[ $size == META* ]]; then
		mkimg 1M m.img
		mkimg 16M d.img
		$BS integrity format -q --no-wipe --data-device d.img m.img
		integritysetup dump m.img | sed 1d >got.txt
	else
		mkimg "$size" x.img
		# shellcheck disable=SC2086
		$BS integrity format -q --no-wipe $opts x.img
		integritysetup dump x.img | sed 1d >got.txt
	fi
	diff got.txt want.txt || fail "format $spec: superblock differs from the kernel's"
done <"$F/formats.txt"
log "formats: ok"

# ---- images blkstack formats and fills --------------------------------------------------------
head -c 32 /dev/urandom >key
for alg in crc32c sha256 hmac-sha256; do
	for ss in 512 4096; do
		for mode in J B; do
			img=f-$alg-$ss-$mode.img
			mkimg 3M "$img"
			k=
			[ "$alg" = hmac-sha256 ] && k="--integrity-key-file key"
			m=
			[ "$mode" = B ] && m=--integrity-bitmap-mode
			# shellcheck disable=SC2086
			$BS integrity format -q --integrity $alg --sector-size $ss $k "$img"
			integritysetup dump "$img" >dump.txt
			grep -qx "sector_size $ss" dump.txt || fail "$img: dump sector size"
			# shellcheck disable=SC2086
			$BS integrity open "$img" fi $m --integrity $alg $k
			[ "$(sum_of fi)" = "$(head -c "$(($($BS dm table fi | awk '{print $2}') * 512))" /dev/zero | sha256sum | cut -c1-64)" ] ||
				fail "$img: a new device does not read as zeroes"
			size=$(($($BS dm table fi | awk '{print $2}') * 512))
			head -c "$size" /dev/urandom >new.bin
			nbdcopy new.bin "$(uri fi)"
			[ "$(sum_of fi)" = "$(sha256sum <new.bin | cut -c1-64)" ] || fail "$img: read back"
			$BS integrity close fi
			kx=
			[ "$alg" = hmac-sha256 ] && kx=$(xxd -p -c 64 key)
			# shellcheck disable=SC2086
			$CHK verify "$img" "$alg" $kx >chk.out || { cat chk.out; fail "$img: tags"; }
			cmp <($CHK data "$img") new.bin || fail "$img: data not in place"
			diff <(integritysetup dump "$img") dump.txt || fail "$img: superblock changed by use"
			rm -f "$img"
		done
	done
done
log "formatted images: ok"

# ---- integritysetup formats here too when the host kernel has device-mapper -------------------------
mkimg 3M host.img
if integritysetup format --batch-mode host.img >/dev/null 2>&1; then
	$BS integrity open host.img hi
	[ "$(sum_of hi)" = "$(head -c "$(($($BS dm table hi | awk '{print $2}') * 512))" /dev/zero | sha256sum | cut -c1-64)" ] ||
		fail "integritysetup's image does not read as zeroes"
	$BS integrity close hi
	log "host integritysetup format: ok"
else
	log "host integritysetup cannot format (no kernel device-mapper here): the fixtures cover it"
fi

# ---- bad input changes nothing ---------------------------------------------------------------
mkimg 3M g.img
$BS integrity format -q g.img
cp g.img g.orig
mkimg 3M plain.img
before=$($BS dm table)
expect_error 'no dm-integrity superblock' $BS integrity open plain.img x
expect_error 'no dm-integrity superblock' $BS integrity dump plain.img
expect_error 'needs a key' $BS integrity open g.img x --integrity hmac-sha256
expect_error 'takes no key' $BS integrity open g.img x --integrity-key-file key
expect_error 'unknown --integrity "md5"' $BS integrity format -q --integrity md5 g.img
expect_error 'invalid --sector-size' $BS integrity format -q --sector-size 1000 g.img
expect_error 'invalid --tag-size' $BS integrity format -q --tag-size 0 g.img
expect_error 'journal encryption\) is not supported' $BS integrity format -q --journal-crypt aes g.img
expect_error 'journal_mac\) is not supported' $BS integrity open g.img x --journal-integrity hmac-sha256
expect_error 'too small' $BS integrity format -q --journal-size 4M g.img
expect_error 'cannot read 64 bytes from key file' $BS integrity format -q --integrity hmac-sha256 \
	--integrity-key-file key --integrity-key-size 64 g.img
expect_error 'belong to format' $BS integrity open g.img x --sector-size 4096
expect_error 'operation aborted' $BS integrity format g.img </dev/null
expect_error 'is not an integrity device' sh -c "$BS dm create lin --table '0 8 zero' && $BS integrity close lin"
$BS dm remove lin
dm="0 5000 integrity $T/g.img 0"
expect_error 'journal_crypt is not supported' $BS dm create x --table "$dm 4 J 2 internal_hash:crc32c journal_crypt:ctr(aes):00"
expect_error 'journal_mac is not supported' $BS dm create x --table "$dm 4 J 2 internal_hash:crc32c journal_mac:hmac(sha256):00"
expect_error 'inline mode \(I\) is not supported' $BS dm create x --table "$dm 4 I 1 internal_hash:crc32c"
expect_error 'Unknown tag size' $BS dm create x --table "$dm - J 0"
expect_error 'Recalculate can only be specified with internal_hash' $BS dm create x --table "$dm 4 J 1 recalculate"
expect_error 'tag size 8 doesn.t match' $BS dm create x --table "$dm 8 J 1 internal_hash:crc32c"
expect_error 'block size 4096 doesn.t match' $BS dm create x --table "$dm 4 J 2 block_size:4096 internal_hash:crc32c"
expect_error 'invalid mode "X"' $BS dm create x --table "$dm 4 X 1 internal_hash:crc32c"
expect_error 'invalid number of feature args' $BS dm create x --table "$dm 4 J 3 internal_hash:crc32c"
expect_error 'invalid argument "bogus"' $BS dm create x --table "$dm 4 J 2 internal_hash:crc32c bogus"
expect_error 'invalid journal_watermark' $BS dm create x --table "$dm 4 J 2 journal_watermark:101 internal_hash:crc32c"
expect_error 'not enough provided sectors' $BS dm create x --table "0 999999 integrity $T/g.img 0 4 J 1 internal_hash:crc32c"
expect_error 'needs a key' $BS dm create x --table "$dm 32 J 1 internal_hash:hmac(sha256)"
expect_error 'invalid internal_hash key' $BS dm create x --table "$dm 32 J 1 internal_hash:hmac(sha256):xyz"
head -c 1M /dev/urandom >rnd.img
expect_error 'not initialized' $BS dm create x --table "0 100 integrity $T/rnd.img 0 4 J 1 internal_hash:crc32c"
cmp g.img g.orig || fail "a refused command changed the image"
[ "$($BS dm table)" = "$before" ] || fail "a refused command changed the daemon"

# a wrong HMAC key opens (the key is not on disk) but nothing reads
head -c 32 /dev/urandom >key2
mkimg 3M h.img
$BS integrity format -q --integrity hmac-sha256 --integrity-key-file key h.img
$BS integrity open h.img hk --integrity hmac-sha256 --integrity-key-file key2
nbdcopy "$(uri hk)" - >/dev/null 2>&1 && fail "reads with the wrong key succeeded"
[ "$($BS dm status hk | awk '{print $4}')" -gt 0 ] || fail "wrong-key mismatches not counted"
$BS integrity close hk
# a zeroed device is formatted by the table, as in Linux
mkimg 3M z.img
$BS dm create z --table "0 2000 integrity $T/z.img 0 - J 2 fix_hmac internal_hash:sha256"
integritysetup dump z.img | grep -q "integrity_tag_size 32" || fail "the table did not format"
$BS dm remove z

stop_daemon
log "ok"
