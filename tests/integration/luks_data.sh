#!/bin/bash
# timeout: 240
# LUKS data both ways, with independent implementations as the oracles:
#   - qemu's luks driver: a LUKS1 image qemu-img made and qemu-io filled reads back the same
#     through blkstack's NBD export, and data blkstack writes reads back in qemu-io and
#     qemu-img convert;
#   - python3-cryptography AES-XTS (helpers/luks_xts.py, sector by sector with plain64 IVs):
#     LUKS2 ciphertext blkstack wrote (sector sizes 512 and 4096, and LUKS1) decrypts with
#     the volume key cryptsetup reports, and data it encrypts reads back through blkstack.
source "$(dirname "$0")/../lib/common.sh"

command -v qemu-img >/dev/null || skip "qemu-img (qemu-utils) is not installed"
command -v cryptsetup >/dev/null || skip "cryptsetup (cryptsetup-bin) is not installed"
cd "$T"
XTS="$PY $TOP/tests/integration/helpers/luks_xts.py"
PASS='qemu pass'
SEC=(--object "secret,id=s0,data=$PASS")
printf '%s' "$PASS" >kq
printf 'pass zero' >k0
start_daemon

nbd_put() { # device offset file
	$PY - "$(uri "$1")" "$2" "$3" <<'EOF'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pwrite(open(sys.argv[3], "rb").read(), int(sys.argv[2]))
h.flush()
h.shutdown()
EOF
}
nbd_get() { # device offset length file
	$PY - "$(uri "$1")" "$2" "$3" "$4" <<'EOF'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
open(sys.argv[4], "wb").write(h.pread(int(sys.argv[3]), int(sys.argv[2])))
h.shutdown()
EOF
}
cs_vk() {
	cryptsetup luksDump -q --dump-volume-key --key-file "$2" "$1" |
		awk '/^MK dump:/ { f = 1 } f { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9a-f][0-9a-f]$/) printf "%s", $i } END { print "" }'
}
pattern() { head -c "$2" /dev/zero | tr '\0' "\\$(printf '%03o' "$1")"; }

# ---- qemu -> blkstack ------------------------------------------------------------------------
log "qemu-img luks image, written by qemu-io"
# (qemu's PBKDF benchmark fails now and then with "Unable to get accurate CPU usage" when a
# round takes less than one clock tick of thread CPU time: try again)
for try in 1 2 3 4 5; do
	qemu-img create -q -f luks "${SEC[@]}" \
		-o key-secret=s0,cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256,iter-time=10 \
		q.img 16M 2>qimg.err && break
	grep -q 'accurate CPU usage' qimg.err && [ $try -lt 5 ] || { cat qimg.err; fail "qemu-img create"; }
	rm -f q.img
done
cryptsetup isLuks --type luks1 q.img || fail "qemu did not make a LUKS1 image"
qemu-io "${SEC[@]}" --image-opts driver=luks,key-secret=s0,file.filename=q.img \
	-c 'write -P 0x5a 0 1M' -c 'write -P 0x3c 5M 512k' >qio.log
$BS luks open --key-file kq q.img qv
nbd_get qv 0 1048576 got1
cmp got1 <(pattern 0x5a 1048576) || fail "qemu's 0x5a pattern did not read back"
nbd_get qv 5242880 524288 got2
cmp got2 <(pattern 0x3c 524288) || fail "qemu's 0x3c pattern did not read back"
nbd_get qv 1048576 1048576 got3
cmp got3 <(head -c 1048576 /dev/zero) >/dev/null && fail "unwritten area reads as zeroes (not decrypted?)"

# ---- blkstack -> qemu ------------------------------------------------------------------------
log "written by blkstack, read by qemu"
pattern 0xa5 1048576 >pa5
head -c 2097152 /dev/urandom >rnd
nbd_put qv 2097152 pa5
nbd_put qv 8388608 rnd
$BS luks close qv
qemu-io "${SEC[@]}" --image-opts driver=luks,key-secret=s0,file.filename=q.img \
	-c 'read -P 0xa5 2M 1M' -c 'read -P 0x5a 0 1M' >qio.log 2>&1
grep -q 'Pattern verification failed' qio.log && fail "qemu-io: $(cat qio.log)"
[ "$(grep -c 'read 1048576/1048576' qio.log)" = 2 ] || fail "qemu-io read: $(cat qio.log)"
qemu-img convert "${SEC[@]}" --image-opts driver=luks,key-secret=s0,file.filename=q.img -O raw q.raw
cmp <(dd if=q.raw bs=1M skip=8 count=2 status=none) rnd || fail "qemu-img convert: random data differs"
cmp <(dd if=q.raw bs=1M skip=2 count=1 status=none) pa5 || fail "qemu-img convert: pattern differs"

# ---- python3-cryptography AES-XTS as the oracle ------------------------------------------------
for combo in luks2:512 luks2:4096 luks1:512; do
	IFS=: read -r type ss <<<"$combo"
	img=x-$type-$ss.img
	log "AES-XTS model: $type sector $ss"
	truncate -s 24M "$img"
	sso=
	[ "$type" = luks2 ] && sso="--sector-size $ss"
	# shellcheck disable=SC2086
	$BS luks format -q --type "$type" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 $sso \
		--key-file k0 "$img"
	if [ "$type" = luks2 ]; then off=16777216; else off=$((4096 * 512)); fi
	key=$(cs_vk "$img" k0)
	[ ${#key} = 128 ] || fail "$img: no key from cryptsetup"

	# blkstack encrypts, the model decrypts
	head -c 3145728 /dev/urandom >plain
	$BS luks open --key-file k0 "$img" xv
	nbd_put xv 1048576 plain
	$BS luks close xv
	$XTS decrypt "$img" "$key" $off "$ss" 0 1048576 3145728 dec
	cmp dec plain || fail "$img: ciphertext does not decrypt to what was written"
	cmp -s <(dd if="$img" bs=1M skip=$((off / 1048576 + 1)) count=3 status=none) plain &&
		fail "$img: plaintext on disk"

	# the model encrypts, blkstack decrypts
	head -c 1048576 /dev/urandom >plain2
	$XTS encrypt "$img" "$key" $off "$ss" 0 4194304 plain2
	$BS luks open --key-file k0 "$img" xv
	nbd_get xv 4194304 1048576 back
	cmp back plain2 || fail "$img: what the model encrypted does not read back"
	nbd_get xv 1048576 3145728 back
	cmp back plain || fail "$img: earlier data changed"
	$BS luks close xv
done

stop_daemon
log "ok"
