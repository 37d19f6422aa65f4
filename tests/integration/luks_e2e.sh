#!/bin/bash
# timeout: 240
# LUKS2 end to end: `blkstack luks format` on a striped daemon device (/dev/mapper/stripe,
# reached over NBD), opened as a crypt device, exported with `blkstack export fuse`; losetup,
# mkfs.ext4, mount; files written and verified by sha256 after a remount; e2fsck -fn clean;
# the raw member files hold none of the plaintext.  A wrong passphrase exits 2 and creates
# nothing; `dm table` masks the key unless --showkeys.  Then the `make run` default stack:
# LUKS2 formatted on first start with a key file, the same header reused on the next.
source "$(dirname "$0")/../lib/common.sh"

for c in losetup mkfs.ext4 e2fsck mount cryptsetup; do
	command -v $c >/dev/null || skip "$c is not installed"
done
[ -e /dev/fuse ] || skip "no /dev/fuse"
cd "$T"
MARK="blkstack-plaintext-marker-$RANDOM$RANDOM"
mkimg 64M a.img b.img
printf 'e2e passphrase' >key
printf 'not it' >wrong
start_daemon

$BS dm create stripe --table "0 262144 striped 2 128 $T/a.img 0 $T/b.img 0"
$BS luks format -q --pbkdf argon2id --pbkdf-memory 256 --pbkdf-force-iterations 4 \
	--key-file key /dev/mapper/stripe
$BS luks is-luks --type luks2 /dev/mapper/stripe || fail "no LUKS2 header on the stripe"
dd if=a.img bs=64k count=1 status=none | head -c 6 | cmp -s - <(printf 'LUKS\272\276') ||
	fail "the first chunk of the stripe (member a) does not start with the LUKS magic"

# wrong passphrase: exit 2, nothing in the daemon
before=$($BS dm ls)
expect_error '^blkstack: No key available with this passphrase\.$' \
	$BS luks open --key-file wrong /dev/mapper/stripe secret
[ "$EXPECT_RC" = 2 ] || fail "wrong passphrase exit $EXPECT_RC"
[ "$($BS dm ls)" = "$before" ] || fail "a refused open changed the daemon"

$BS luks open --key-file key /dev/mapper/stripe secret
$BS dm table secret | grep -q "^0 229376 crypt aes-xts-plain64 0\{128\} 0 /dev/mapper/stripe 32768\( \|$\)" ||
	fail "table: $($BS dm table secret)"
key=$($BS dm table --showkeys secret | awk '{ print $5 }')
[ "$key" != "$(printf '0%.0s' {1..128})" ] || fail "--showkeys shows zeroes"
vk=$($BS luks dump --dump-volume-key --key-file key /dev/mapper/stripe |
	awk '/^MK dump:/ { f = 1 } f { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9a-f][0-9a-f]$/) printf "%s", $i }')
[ "$key" = "$vk" ] || fail "table key differs from the dumped volume key"
$BS dm table secret | grep -q "$key" && fail "dm table shows the key without --showkeys"
$BS dm deps secret | grep -q stripe || fail "deps"

# FUSE export, loop device, ext4
$BS export fuse secret "$T/secret.img"
track_export "$T/secret.img"
loop=$(losetup -f --show "$T/secret.img" 2>/dev/null) || skip "cannot attach loop devices here"
track_loop "$loop"
mkfs.ext4 -q -F "$loop" >/dev/null
mkdir mnt
mount "$loop" mnt 2>/dev/null || skip "cannot mount here"
track_mount "$T/mnt"
for i in 1 2 3; do
	{
		for _ in $(seq 2000); do echo "$MARK line $i"; done
		head -c 300000 /dev/urandom | base64
	} >"mnt/file$i"
done
head -c 5000000 /dev/urandom >mnt/big.bin
(cd mnt && sha256sum file1 file2 file3 big.bin) >sums
umount mnt
mount "$loop" mnt
(cd mnt && sha256sum -c --quiet "$T/sums") || fail "files changed across a remount"
umount mnt
e2fsck -fn "$loop" >fsck.log 2>&1 || { cat fsck.log; fail "e2fsck found problems"; }
grep -c "$MARK" "$loop" >/dev/null || fail "the marker is not on the decrypted device (test broken)"
losetup -d "$loop"
$BS export remove "$T/secret.img"

# no plaintext in the members
for m in a.img b.img; do
	n=$(grep -c "$MARK" $m || true)
	[ "$n" = 0 ] || fail "$m holds the plaintext marker ($n lines)"
done

$BS luks close secret
$BS dm remove stripe
stop_daemon

# ---- the make-run default stack ------------------------------------------------------------
log "default stack"
# the sockets come up before the stack is built: wait for the crypt device
wait_secret() {
	for _ in $(seq 150); do
		$BS dm info secret >/dev/null 2>&1 && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	fail "default stack: no device \"secret\""
}
start_daemon --default-stack "$T/var"
wait_secret
$BS dm table default | grep -q "^0 2052096 md [0-9a-f:]* 3 $T/var/raid0.img $T/var/raid1.img $T/var/raid2.img$" ||
	fail "default stack: RAID5 device: $($BS dm table default)"
$BS raid detail default | grep -q 'Raid Level : raid5' || fail "default stack: not RAID5"
mdadm --examine var/raid1.img | grep -q 'Raid Level : raid5' || fail "default stack: mdadm --examine"
$BS dm table secret | grep -q '^0 2019328 crypt aes-xts-plain64 0\{128\} 0 /dev/mapper/default 32768 1 sector_size:4096$' ||
	fail "default stack: $($BS dm table secret)"
[ "$(stat -c %a var/secret.key)" = 600 ] || fail "key file mode $(stat -c %a var/secret.key)"
[ "$(stat -c %s var/secret.key)" -ge 32 ] || fail "key file too short"
$BS luks dump /dev/mapper/default | grep -q 'PBKDF: *argon2id' || fail "default stack: pbkdf"
uuid=$($BS luks uuid /dev/mapper/default)
$BS dm info secret | grep -q "^UUID: CRYPT-LUKS2-${uuid//-/}-secret$" || fail "default stack: dm uuid"
printf '%s' "$MARK" >m.txt
$PY -c "
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1]); h.pwrite(open('m.txt','rb').read().ljust(4096, b'\0'), 1 << 20); h.flush(); h.shutdown()
" "$(uri secret)"
stop_daemon
grep -c "$MARK" var/*.img >/dev/null && fail "plaintext in the default stack's files"
# the next start reuses the header and unlocks it with the key file
start_daemon --default-stack "$T/var"
wait_secret
[ "$($BS luks uuid /dev/mapper/default)" = "$uuid" ] || fail "default stack was formatted again"
$PY -c "
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1]); d = h.pread(4096, 1 << 20); h.shutdown()
sys.exit(0 if d.rstrip(b'\0') == open('m.txt','rb').read() else 1)
" "$(uri secret)" || fail "default stack: data did not survive a restart"
$BS luks open --test-passphrase --key-file var/secret.key /dev/mapper/default ||
	fail "the key file does not unlock the header"
stop_daemon
log "ok"
