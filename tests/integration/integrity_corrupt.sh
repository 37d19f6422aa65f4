#!/bin/bash
# timeout: 120
# Silent corruption below the integrity target is caught: random bytes written straight into
# the backing file's data area (and into its tag area) make exactly those sectors fail with
# EIO over NBD (EILSEQ inside), while their neighbours read; every failure is counted in the
# status and logged with its sector; recovery mode (R) returns the damaged data instead, still
# counting, and refuses writes.  For 512-byte sectors in journal mode, 4096-byte sectors in
# bitmap mode and direct mode with hmac-sha256.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
CHK="$PY $TOP/tests/integration/helpers/integrity_check.py"
start_daemon
head -c 32 /dev/urandom >key

# run NAME "LAYOUT-OPTIONS" "HASH-OPTIONS" "MODE-OPTIONS" (format takes the first two,
# open the last two)
run() {
	local name=$1 lopts=() fopts=() oopts=() size bs nsec
	read -r -a lopts <<<"$2"
	read -r -a fopts <<<"$3"
	read -r -a oopts <<<"$4"
	mkimg 6M "$name.img"
	$BS integrity format -q "${lopts[@]}" "${fopts[@]}" "$name.img"
	$BS integrity open "$name.img" "$name" "${fopts[@]}" "${oopts[@]}"
	size=$(($($BS dm table "$name" | awk '{print $2}') * 512))
	bs=$(sed -n 's/^sector_size //p' <(integritysetup dump "$name.img"))
	head -c "$size" /dev/urandom >"$name.data"
	nbdcopy "$name.data" "$(uri "$name")"
	$BS integrity close "$name"

	# ten blocks with a few random bytes inside their data, two with a damaged tag
	nsec=$((size / 512))
	$PY - "$name" "$nsec" "$bs" >"$name.bad" <<'PY'
import random, sys
name, nsec, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) // 512
random.seed(name)
blocks = random.sample(range(1, nsec // bs - 1, 3), 12)  # never neighbours
for b in blocks[:10]:
    print("data", b * bs + random.randrange(bs))
for b in blocks[10:]:
    print("tag", b * bs)
PY
	while read -r kind s; do
		n=16
		if [ "$kind" = data ]; then
			off=$(($($CHK dataoff "$name.img" "$s") + RANDOM % 496))
		else
			off=$($CHK tagoff "$name.img" "$s")
			n=4 # within the one tag (4 bytes is the shortest here)
		fi
		head -c $n /dev/urandom | dd of="$name.img" bs=1 seek="$off" conv=notrunc status=none
	done <"$name.bad"
	$CHK verify "$name.img" "$(val_alg "${fopts[@]}")" $(keyhex "${fopts[@]}") >/dev/null &&
		fail "$name: the corruption did not reach the image"

	# normal mode: exactly the damaged blocks fail, the rest reads
	$BS integrity open "$name.img" "$name" "${fopts[@]}" "${oopts[@]}"
	$PY - "$NBD_SOCK" "$name" "$bs" "$name.bad" "$name.data" <<'PY' || fail "$name: reads"
import errno, nbd, sys
sock, name, bs, bad, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
ref = open(data, "rb").read()
h = nbd.NBD(); h.set_export_name(name); h.connect_unix(sock)
for line in open(bad):
    s = int(line.split()[1])
    blk = s // (bs // 512) * bs
    try:
        h.pread(bs, blk)
        sys.exit("block at byte %d read without error" % blk)
    except nbd.Error as e:
        if e.errnum != errno.EIO:
            sys.exit("block at byte %d: %s, not EIO" % (blk, e))
    # the neighbours are intact
    for nb in (blk - bs, blk + bs):
        if nb >= 0 and nb + bs <= len(ref) and h.pread(bs, nb) != ref[nb:nb + bs]:
            sys.exit("neighbour at byte %d reads wrong data" % nb)
h.shutdown()
PY
	[ "$($BS dm status "$name" | awk '{print $4}')" = 12 ] ||
		fail "$name: status counts $($BS dm status "$name" | awk '{print $4}') mismatches, not 12"
	[ "$($BS integrity status "$name" | sed -n 's/^  failures: //p')" = 12 ] || fail "$name: integrity status"
	while read -r kind s; do
		b=$((s / (bs / 512) * (bs / 512)))
		grep -q "integrity $name: checksum failed at sector $b\$" "$T/daemon.log" ||
			fail "$name: mismatch at sector $b not logged"
	done <"$name.bad"
	nbdcopy "$(uri "$name")" - >/dev/null 2>&1 && fail "$name: a full read succeeded"
	$BS integrity close "$name"

	# recovery mode: everything reads (the damaged bytes included), mismatches still counted
	$BS integrity open "$name.img" "$name" "${fopts[@]}" --integrity-recovery-mode
	cmp <(nbdcopy "$(uri "$name")" -) <($CHK data "$name.img") || fail "$name: recovery-mode read"
	[ "$($BS dm status "$name" | awk '{print $4}')" -ge 12 ] || fail "$name: recovery mode did not count"
	$BS dm table "$name" | grep -q " R 6 \| R 7 " || fail "$name: not in recovery mode"
	$PY - "$NBD_SOCK" "$name" <<'PY' || fail "$name: recovery mode took a write"
import nbd, sys
h = nbd.NBD(); h.set_export_name(sys.argv[2]); h.connect_unix(sys.argv[1])
try:
    h.pwrite(bytes(4096), 0)
    sys.exit("write accepted")
except nbd.Error:
    pass
h.shutdown()
PY
	$BS integrity close "$name"
	log "$name: ok"
}
val_alg() { # the --integrity of format options, default crc32c
	local a=crc32c
	while [ $# -gt 0 ]; do [ "$1" = --integrity ] && a=$2; shift; done
	echo "$a"
}
keyhex() {
	while [ $# -gt 0 ]; do [ "$1" = --integrity-key-file ] && xxd -p -c 64 "$2"; shift; done
}

run j512 "" "" ""
run b4096 "--sector-size 4096" "--integrity sha256" "--integrity-bitmap-mode"
run d512 "" "--integrity hmac-sha256 --integrity-key-file key" "--integrity-no-journal"
stop_daemon
log ok
