#!/bin/bash
# timeout: 180
# FUSE export of a striped device: the file (created mode 0600, the device's size, fixed),
# coherent with NBD both ways, fsync, fallocate punch-hole/zero-range as write-zeroes,
# `export ls`, busy refusals (dm remove, export remove while open or loop-attached); then
# losetup, mkfs.ext4, mount, files written, umount, e2fsck -fn clean, remount and sha256
# verified, export removed (the file goes away) and the file system read back from the
# device over NBD alone.
source "$(dirname "$0")/../lib/common.sh"

for c in losetup mkfs.ext4 e2fsck debugfs mount umount fallocate; do
	command -v $c >/dev/null || skip "$c is not installed"
done
[ "$(id -u)" = 0 ] || skip "needs root (loop devices, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
losetup -f >/dev/null 2>&1 || skip "no free loop device"

cd "$T"
mkimg 32M a.img b.img
start_daemon
$BS dm create s --table "0 131072 striped 2 64 $T/a.img 0 $T/b.img 0"
size=$((131072 * 512))

# ---- the file ------------------------------------------------------------------------------
[ ! -e s.img ] || fail "test broken"
$BS export fuse s "$T/s.img"
track_export "$T/s.img"
[ -f s.img ] || fail "export did not create a regular file"
[ "$(stat -c %s s.img)" = $size ] || fail "file size $(stat -c %s s.img), expected $size"
[ "$(stat -c %a s.img)" = 600 ] || fail "file mode $(stat -c %a s.img), expected 600"
mountpoint -q s.img || fail "the file is not a mount point"
grep -q " $T/s.img fuse" /proc/mounts || fail "no FUSE mount in /proc/mounts"
$BS export ls | grep -qx "$T/s.img	s" || fail "export ls: $($BS export ls)"
# errors: unknown device, a second export on the same file, dm remove of an exported device
expect_error 'does not exist' $BS export fuse nosuch "$T/x.img"
[ ! -e x.img ] || fail "a failed export left its file"
if $BS export fuse s "$T/s.img" 2>/dev/null; then fail "exported twice on the same file"; fi
expect_error 'busy' $BS dm remove s
# the size is the device's
if truncate -s 1M s.img 2>/dev/null; then fail "truncate changed an export's size"; fi
[ "$(stat -c %s s.img)" = $size ] || fail "size changed"

# ---- coherence with NBD ---------------------------------------------------------------------
devread() { # offset length: bytes of the device, over NBD
	$PY -c 'import nbd, sys
h = nbd.NBD(); h.set_export_name("s"); h.connect_unix(sys.argv[1])
off, n = int(sys.argv[2]), int(sys.argv[3])
a, e = off & ~511, (off + n + 511) & ~511  # libnbd insists on the 512-byte minimum
sys.stdout.buffer.write(h.pread(e - a, a)[off - a:off - a + n])' "$NBD_SOCK" "$1" "$2"
}
randfile r1.bin 4
dd if=r1.bin of=s.img bs=1M seek=3 conv=notrunc,fsync status=none
devread 3145728 4194304 | cmp - r1.bin || fail "FUSE write not seen over NBD"
randfile r2.bin 2
nbdcopy r2.bin "$(uri s)"
cmp -n 2097152 s.img r2.bin || fail "NBD write not seen through the file (stale cache?)"
# unaligned writes through the file
printf 'hello, fuse' | dd of=s.img bs=1 seek=1000001 conv=notrunc status=none
[ "$(dd if=s.img bs=1 skip=1000001 count=11 status=none)" = "hello, fuse" ] ||
	fail "unaligned write/read through the file"
[ "$(devread 1000001 11)" = "hello, fuse" ] || fail "unaligned write not on the device"
# fallocate: punch-hole and zero-range become write-zeroes; the size stays
fallocate -p -o 3145728 -l 65536 s.img || fail "punch-hole"
fallocate -z -o 3276800 -l 65536 s.img || fail "zero-range"
[ "$(stat -c %s s.img)" = $size ] || fail "fallocate changed the size"
devread 3145728 4194304 | $PY -c '
import sys
d = sys.stdin.buffer.read()
r = open(sys.argv[1], "rb").read()
want = bytes(65536) + r[65536:131072] + bytes(65536) + r[196608:]
sys.exit(d != want)' r1.bin || fail "punch-hole/zero-range contents"
# the striped layout holds the file's bytes: chunk 0 of the device is a.img's first 32 KiB
cmp -n 32768 a.img r2.bin || fail "first chunk not on a.img"
cmp -n 32768 b.img <(tail -c +32769 r2.bin) || fail "second chunk not on b.img"

# ---- ext4 on a loop device ------------------------------------------------------------------
loop=$(losetup -f --show s.img) || fail "losetup"
track_loop "$loop"
expect_error 'busy' $BS export remove "$T/s.img"
mkfs.ext4 -q -F -b 4096 "$loop" >/dev/null || fail "mkfs.ext4"
mkdir mnt
mount "$loop" mnt || fail "mount"
track_mount "$T/mnt"
mkdir mnt/dir
head -c 7000000 /dev/urandom >mnt/big.bin
for i in $(seq 50); do head -c $((i * 997)) /dev/urandom >mnt/dir/f$i; done
seq 100000 >mnt/numbers.txt
ln -s numbers.txt mnt/link
(cd mnt && find . -type f -print0 | sort -z | xargs -0 sha256sum) >sums
[ "$(wc -l <sums)" = 52 ] || fail "test broken: $(wc -l <sums) files"
sync -f mnt/big.bin
umount mnt
e2fsck -fn "$loop" >fsck.log 2>&1 || { cat fsck.log; fail "e2fsck -fn found problems"; }
mount "$loop" mnt || fail "remount"
(cd mnt && sha256sum -c --quiet "$T/sums") || fail "files differ after a remount"
[ "$(readlink mnt/link)" = numbers.txt ] || fail "symlink"
# delete a file and fstrim: discards travel through the loop device and FUSE
rm mnt/big.bin
fstrim mnt 2>/dev/null || true
umount mnt
e2fsck -fn "$loop" >fsck.log 2>&1 || { cat fsck.log; fail "e2fsck after rm/fstrim"; }
losetup -d "$loop"

# a process holding the file open makes it busy too
exec 9<s.img
expect_error 'busy' $BS export remove "$T/s.img"
exec 9<&-
$BS export remove "$T/s.img"
[ ! -e s.img ] || fail "export remove left the file it created"
$BS export ls | grep -q s.img && fail "export ls still shows the export"
expect_error 'No such file|not exported|no export' $BS export remove "$T/s.img"

# the file system is on the device: read it over NBD into a plain file and check it there
nbdcopy "$(uri s)" copy.img
e2fsck -fn copy.img >fsck.log 2>&1 || { cat fsck.log; fail "e2fsck of the device's contents"; }
for f in numbers.txt dir/f1 dir/f50; do
	want=$(grep " ./$f\$" sums | cut -d' ' -f1)
	got=$(debugfs -R "cat /$f" copy.img 2>/dev/null | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || fail "$f read from the device's contents differs"
done
debugfs -R "stat /big.bin" copy.img 2>&1 | grep -q 'not found' || fail "deleted file still there"

# an export of an existing regular file is mounted over it and leaves it alone afterwards
echo keep-me >pre.img
$BS export fuse s "$T/pre.img"
track_export "$T/pre.img"
[ "$(stat -c %s pre.img)" = $size ] || fail "export over an existing file"
$BS export remove "$T/pre.img"
[ "$(cat pre.img)" = keep-me ] || fail "export over an existing file changed or removed it"

# at daemon shutdown exports are detached
$BS export fuse s "$T/s.img"
track_export "$T/s.img"
mountpoint -q s.img || fail "re-export"
stop_daemon
mountpoint -q s.img && fail "export still mounted after the daemon stopped"
[ ! -e s.img ] || fail "the file of an export is left behind after shutdown"
log ok
