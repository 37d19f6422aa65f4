#!/bin/bash
# nbd-bench.sh - blkstackd (a `linear` device) against nbdkit's file plugin and qemu-nbd.
#
# Every server serves the same host file over its own unix socket, and every server gets the
# same client load:
#   seq read    nbdcopy URI null:            (whole device, median of --reps runs, MB/s)
#   seq write   nbdcopy SRC URI              (whole device, median of --reps runs, MB/s)
#   rand read   fio --ioengine=nbd, 4 KiB, queue depth 1 and 32 (IOPS, median of --fio-reps)
#   rand write  fio --ioengine=nbd, 4 KiB, queue depth 1 and 32 (IOPS, median of --fio-reps)
# All the servers run from the start, idle but for the one being measured, and the runs of a
# test alternate between them (in an order that rotates from one round to the next), so that
# the drift of a shared machine over minutes falls on every server alike instead of on
# whichever ran last.
# The host file (and the nbdcopy source) are in the page cache for the whole run, and each
# test starts with no dirty pages of the file (it is synced, untimed, before every test).
# With --luks the file is a LUKS1 volume (aes-xts-plain64, 512-bit key, formatted by
# `blkstack luks format`) and every server decrypts it: blkstackd with `blkstack luks open`,
# nbdkit with its luks filter, qemu-nbd with its luks driver (LUKS1: the format all three read).
# blkstackd then also serves the volume's data area undecrypted through a `linear` device, and
# blkstack's seq read alternates between the two, run for run, so that the cost of the
# decryption is measured against the same file under the same conditions.
# See bench/README.md.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

SIZE=1G
RUNTIME=10
RAMP=1
REPS=3
FIO_REPS=1
BUILD=$TOP/build
SERVERS="blkstack nbdkit qemu-nbd qemu-nbd-uring"
TESTS="seqread seqwrite randread1 randread32 randwrite1 randwrite32"
BS_THREADS=
WORK_PARENT=${TMPDIR:-/tmp}
KEEP=0
OUT=
LUKS=0
SERVER_CPUS=
CLIENT_CPUS=

usage() {
	cat <<EOT
usage: bench/nbd-bench.sh [options]
  -s, --size SIZE        size of the served file (default $SIZE; K/M/G suffixes, multiple of 4 KiB)
  -t, --runtime SECONDS  measured time of each fio test (default $RUNTIME, plus ${RAMP}s ramp)
  -r, --reps N           nbdcopy runs per sequential test; the median is reported (default $REPS)
      --fio-reps N       fio runs per random test; the median is reported (default $FIO_REPS)
  -b, --build DIR        blkstack build directory with blkstackd and blkstack (default build/)
      --servers LIST     servers to run, space separated (default "$SERVERS")
      --tests LIST       tests to run (default "$TESTS")
      --threads N        blkstackd --threads (default: blkstackd's own default)
      --server-cpus LIST taskset CPU list for the servers (default: no pinning)
      --client-cpus LIST taskset CPU list for fio and nbdcopy (default: no pinning)
  -d, --dir DIR          where to create the scratch directory (default \$TMPDIR or /tmp)
  -o, --output FILE      also append raw results, one "server test value unit" line each
  -k, --keep             keep the scratch directory (logs, fio JSON) and say where it is
      --luks             serve a LUKS1 volume (aes-xts-plain64) instead of a raw file
  -h, --help
Servers: blkstack, nbdkit, qemu-nbd (--aio=threads), qemu-nbd-uring (--aio=io_uring).
Tests: seqread seqwrite randread1 randread32 randwrite1 randwrite32.
EOT
}

die() {
	echo "nbd-bench: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	-s | --size) SIZE=${2:?}; shift ;;
	-t | --runtime) RUNTIME=${2:?}; shift ;;
	-r | --reps) REPS=${2:?}; shift ;;
	--fio-reps) FIO_REPS=${2:?}; shift ;;
	-b | --build) BUILD=${2:?}; shift ;;
	--servers) SERVERS=${2:?}; shift ;;
	--tests) TESTS=${2:?}; shift ;;
	--threads) BS_THREADS=${2:?}; shift ;;
	--server-cpus) SERVER_CPUS=${2:?}; shift ;;
	--client-cpus) CLIENT_CPUS=${2:?}; shift ;;
	-d | --dir) WORK_PARENT=${2:?}; shift ;;
	-o | --output) OUT=${2:?}; shift ;;
	-k | --keep) KEEP=1 ;;
	--luks) LUKS=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

# ---- checks -----------------------------------------------------------------------------------

BYTES=$(numfmt --from=iec "$SIZE" 2>/dev/null) || die "bad size \"$SIZE\""
[ "$BYTES" -ge 1048576 ] && [ $((BYTES % 4096)) -eq 0 ] ||
	die "size must be at least 1 MiB and a multiple of 4 KiB"
[[ $RUNTIME =~ ^[1-9][0-9]*$ ]] || die "bad runtime \"$RUNTIME\""
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "bad reps \"$REPS\""
[[ $FIO_REPS =~ ^[1-9][0-9]*$ ]] || die "bad fio-reps \"$FIO_REPS\""
[ -z "$BS_THREADS" ] || [[ $BS_THREADS =~ ^[1-9][0-9]*$ ]] || die "bad --threads"
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "no build directory $BUILD (run make build)"
for t in $TESTS; do
	case $t in seqread | seqwrite | randread1 | randread32 | randwrite1 | randwrite32) ;;
	*) die "unknown test $t" ;; esac
done

NCPU=$(nproc)
# A CPU list must only name CPUs this machine has.
check_cpus() {
	local list=$1 part lo hi
	[ -n "$list" ] || return 0
	for part in ${list//,/ }; do
		lo=${part%-*} hi=${part#*-}
		[[ $lo =~ ^[0-9]+$ && $hi =~ ^[0-9]+$ ]] || die "bad CPU list \"$list\""
		[ "$hi" -lt "$NCPU" ] && [ "$lo" -le "$hi" ] ||
			die "CPU list \"$list\" names CPUs this machine lacks (it has $NCPU)"
	done
}
check_cpus "$SERVER_CPUS"
check_cpus "$CLIENT_CPUS"
# Prefixes for the server and client commands.  taskset execs its command, so a server's $! is
# the server itself (a shell function would put a subshell between us and it).
SRV_PIN=()
CLI_PIN=()
[ -z "$SERVER_CPUS" ] || SRV_PIN=(taskset -c "$SERVER_CPUS")
[ -z "$CLIENT_CPUS" ] || CLI_PIN=(taskset -c "$CLIENT_CPUS")

need() { command -v "$1" >/dev/null || die "$1 is needed ($2)"; }
need fio "apt-get install fio"
need nbdcopy "apt-get install libnbd-bin"
need numfmt coreutils
fio --enghelp=nbd >/dev/null 2>&1 || die "this fio has no nbd engine"

# Peers that are not installed are reported as n/a rather than failing the run.
have_server() {
	case $1 in
	blkstack) [ -x "$BUILD/blkstackd" ] && [ -x "$BUILD/blkstack" ] ;;
	nbdkit) command -v nbdkit >/dev/null && nbdkit file --dump-plugin >/dev/null 2>&1 &&
		{ [ "$LUKS" = 0 ] || nbdkit --filter=luks null --dump-plugin >/dev/null 2>&1; } ;;
	qemu-nbd | qemu-nbd-uring) command -v qemu-nbd >/dev/null ;;
	*) die "unknown server $1" ;;
	esac
}

# ---- scratch space and clean-up ---------------------------------------------------------------

W=$(mktemp -d "$WORK_PARENT/nbd-bench.XXXXXX")
IMG=$W/disk.img
SRC=$W/src.img
PASS=$W/passphrase # LUKS: the passphrase, without a newline
declare -A SPID SURI # per server: its pid and its URI
LINEAR_URI=          # --luks: blkstackd's undecrypted view of the volume's data area

stop_server() {
	local pid=${SPID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true # still there after 10 s
	wait "$pid" 2>/dev/null || true
	SPID[$1]=
}

stop_all() {
	local srv
	for srv in "${!SPID[@]}"; do stop_server "$srv"; done
}

cleanup() {
	local rc=$?
	set +e
	stop_all
	if [ "$KEEP" = 1 ]; then
		echo "scratch directory kept: $W" >&2
	else
		rm -rf "$W"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- servers ----------------------------------------------------------------------------------

wait_socket() {
	for _ in $(seq 100); do
		[ -S "$1" ] && return 0
		kill -0 "${SPID[$2]}" 2>/dev/null || break
		sleep 0.05
	done
	cat "$W/$2.log" >&2
	die "$2 did not start"
}

# Starts server $1; sets SPID[$1] and SURI[$1].
start_server() {
	local sock=$W/$1.sock ctl=$W/$1.ctl.sock
	case $1 in
	blkstack)
		"${SRV_PIN[@]}" "$BUILD/blkstackd" --foreground --control "$ctl" --nbd "unix:$sock" \
			${BS_THREADS:+--threads "$BS_THREADS"} >"$W/$1.log" 2>&1 &
		SPID[$1]=$!
		wait_socket "$sock" "$1"
		wait_socket "$ctl" "$1"
		if [ "$LUKS" = 1 ]; then
			BLKSTACK_CONTROL=$ctl "$BUILD/blkstack" luks open --key-file "$PASS" \
				"$IMG" bench >>"$W/$1.log"
			# The data area after the 2 MiB header, as it is on the file.
			BLKSTACK_CONTROL=$ctl "$BUILD/blkstack" dm create linear \
				--table "0 $((BYTES / 512)) linear $IMG 4096" >>"$W/$1.log"
			LINEAR_URI="nbd+unix:///linear?socket=$sock"
		else
			BLKSTACK_CONTROL=$ctl "$BUILD/blkstack" dm create bench \
				--table "0 $((BYTES / 512)) linear $IMG 0" >>"$W/$1.log"
		fi
		SURI[$1]="nbd+unix:///bench?socket=$sock"
		;;
	nbdkit)
		# Default thread count (16) and default cache mode (the page cache).
		local luks=()
		[ "$LUKS" = 0 ] || luks=(--filter=luks)
		"${SRV_PIN[@]}" nbdkit --foreground --exit-with-parent -U "$sock" "${luks[@]}" file \
			file="$IMG" ${luks:+passphrase=+$PASS} >"$W/$1.log" 2>&1 &
		SPID[$1]=$!
		wait_socket "$sock" "$1"
		SURI[$1]="nbd+unix:///?socket=$sock"
		;;
	qemu-nbd | qemu-nbd-uring)
		# --cache=writeback: buffered I/O through the page cache, fdatasync on FLUSH; the
		# same semantics as blkstackd without --direct.  No image locking: the other
		# servers have the file open too (one at a time uses it).
		local aio=threads
		[ "$1" = qemu-nbd ] || aio=io_uring
		if [ "$LUKS" = 1 ]; then
			"${SRV_PIN[@]}" qemu-nbd -k "$sock" --cache=writeback --aio=$aio -t -e 64 \
				--object "secret,id=pass,file=$PASS" --image-opts \
				"driver=luks,key-secret=pass,file.driver=file,file.filename=$IMG,file.locking=off" \
				>"$W/$1.log" 2>&1 &
		else
			"${SRV_PIN[@]}" qemu-nbd -k "$sock" --cache=writeback --aio=$aio -t -e 64 \
				--image-opts "driver=raw,file.driver=file,file.filename=$IMG,file.locking=off" \
				>"$W/$1.log" 2>&1 &
		fi
		SPID[$1]=$!
		wait_socket "$sock" "$1"
		SURI[$1]="nbd+unix:///?socket=$sock"
		;;
	esac
}

# ---- tests ------------------------------------------------------------------------------------

now_ns() { date +%s%N; }

# The server must still be running after a test, or its figure means nothing.
check_alive() {
	kill -0 "${SPID[$1]}" 2>/dev/null && return 0
	echo "nbd-bench: $1 died during $2; log:" >&2
	tail -n 20 "$W/$1.log" >&2
	SPID[$1]=
	return 1
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# Runs test $2 once against server $1; prints the figure (MB/s or IOPS), or fails.
run_test() {
	local srv=$1 t=$2 t0 t1 rw qd uri=${SURI[$1]}
	sync "$IMG" # no dirty pages of the file carried into the test (untimed)
	case $t in
	seqread | seqwrite)
		if [ "$t" = seqread ] && [ "$srv" = blkstack ] && [ -n "$LINEAR_URI" ]; then
			# The unencrypted reference, just before each encrypted run.
			t0=$(now_ns)
			"${CLI_PIN[@]}" nbdcopy "$LINEAR_URI" null: 2>>"$W/client.log" || return 1
			t1=$(now_ns)
			awk -v b="$BYTES" -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f\n", b / (ns / 1e3)}' \
				>>"$W/linear-seqread"
		fi
		t0=$(now_ns)
		if [ "$t" = seqread ]; then
			"${CLI_PIN[@]}" nbdcopy "$uri" null: 2>>"$W/client.log" || return 1
		else
			"${CLI_PIN[@]}" nbdcopy "$SRC" "$uri" 2>>"$W/client.log" || return 1
		fi
		t1=$(now_ns)
		awk -v b="$BYTES" -v ns=$((t1 - t0)) 'BEGIN {printf "%.1f\n", b / (ns / 1e3)}'
		;;
	rand*)
		rw=${t%%[0-9]*} qd=${t#"$rw"}
		"${CLI_PIN[@]}" fio --name="$t" --ioengine=nbd --uri="$uri" --rw="$rw" --bs=4k \
			--iodepth="$qd" --size="$BYTES" --time_based --runtime="$RUNTIME" \
			--ramp_time="$RAMP" --randrepeat=0 --norandommap --output-format=json \
			--output="$W/$srv-$t.json" >>"$W/client.log" 2>&1 || return 1
		"$PY" - "$W/$srv-$t.json" <<'EOT'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
print("%.0f" % (job["read"]["iops"] + job["write"]["iops"]))
EOT
		;;
	esac
}

# ---- the run ----------------------------------------------------------------------------------

declare -A RES
echo "nbd-bench: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1))," \
	"kernel $(uname -r), $(numfmt --to=iec "$BYTES") file in the page cache, ${RUNTIME}s per fio test," \
	"median of $REPS nbdcopy runs$([ "$LUKS" = 0 ] || echo ", LUKS1 aes-xts-plain64 512-bit")"
echo "nbd-bench: blkstackd from $BUILD; scratch in $W"

# ", N% of the file in the page cache", when fincore can tell.
resident() {
	command -v fincore >/dev/null || return 0
	fincore -b -n -o RES "$IMG" 2>/dev/null |
		awk -v b="$BYTES" '{printf ", %.0f%% of the file in the page cache", 100 * $1 / b}'
}

head -c "$BYTES" /dev/urandom >"$IMG"
cp "$IMG" "$SRC"
if [ "$LUKS" = 1 ]; then
	# The volume: a LUKS1 header and key slots (2 MiB for a 512-bit key), then BYTES of data
	# (random bytes, as if written before).  One PBKDF2 iteration count for every server.
	printf 'nbd-bench passphrase' >"$PASS"
	{ head -c 2M /dev/zero; cat "$SRC"; } >"$IMG"
	"$BUILD/blkstack" luks format -q --type luks1 --key-file "$PASS" \
		--pbkdf-force-iterations 1000 "$IMG" >"$W/format.log" 2>&1 ||
		{ cat "$W/format.log" >&2; die "luks format failed"; }
	off=$("$BUILD/blkstack" luks dump "$IMG" | sed -n 's/^Payload offset:[[:space:]]*//p')
	[ "$off" = 4096 ] || die "unexpected LUKS1 payload offset \"$off\" (2 MiB expected)"
fi
sync "$IMG" "$SRC"
cat "$IMG" "$SRC" >/dev/null # warm: both files stay resident for the whole run
if command -v fincore >/dev/null; then
	fincore -n -o RES,SIZE,FILE "$IMG" "$SRC" | sed 's/^/nbd-bench: page cache: /'
fi

RUN=()
for srv in $SERVERS; do
	if ! have_server "$srv"; then
		echo "nbd-bench: $srv is not available, skipped" >&2
		continue
	fi
	start_server "$srv"
	RUN+=("$srv")
done
[ ${#RUN[@]} -gt 0 ] || die "no server to run"
echo "nbd-bench: servers up: ${RUN[*]}"

for t in $TESTS; do
	case $t in seq*) n=$REPS ;; *) n=$FIO_REPS ;; esac
	cat "$IMG" "$SRC" >/dev/null # re-warm, in case anything was evicted
	echo "nbd-bench: $t, $n round(s) (load average $(cut -d' ' -f1-3 /proc/loadavg)$(resident))"
	for r in $(seq "$n"); do
		# Round R starts with the server after the one that started round R-1.
		for k in $(seq 0 $((${#RUN[@]} - 1))); do
			srv=${RUN[$(((k + r - 1) % ${#RUN[@]}))]}
			[ -n "${SPID[$srv]}" ] || start_server "$srv"
			if v=$(run_test "$srv" "$t") && check_alive "$srv" "$t"; then
				echo "$v" >>"$W/res.$srv.$t"
			else
				echo "nbd-bench: $srv: $t failed (see $W/client.log)" >&2
				KEEP=1
			fi
		done
	done
	for srv in "${RUN[@]}"; do
		[ -s "$W/res.$srv.$t" ] || continue
		v=$(median <"$W/res.$srv.$t")
		RES[$srv,$t]=$v
		printf '  %-12s %-16s %s\n' "$t" "$srv" "$v"
		[ -z "$OUT" ] || echo "$srv $t $v $(case $t in seq*) echo MB/s ;; *) echo IOPS ;; esac)" >>"$OUT"
	done
done
stop_all

# ---- the table ----------------------------------------------------------------------------------

label() {
	case $1 in
	seqread) echo "seq read, nbdcopy" ;;
	seqwrite) echo "seq write, nbdcopy" ;;
	randread1) echo "4K rand read QD1" ;;
	randread32) echo "4K rand read QD32" ;;
	randwrite1) echo "4K rand write QD1" ;;
	randwrite32) echo "4K rand write QD32" ;;
	esac
}

PEERS=()
for srv in $SERVERS; do [ "$srv" = blkstack ] || PEERS+=("$srv"); done

echo
{
	printf '%-20s %-5s' test unit
	for srv in $SERVERS; do printf ' %14s' "$srv"; done
	for p in "${PEERS[@]}"; do printf ' %16s' "bs/$p"; done
	printf ' %10s\n' bs/best
	for t in $TESTS; do
		case $t in seq*) unit=MB/s ;; *) unit=IOPS ;; esac
		printf '%-20s %-5s' "$(label "$t")" "$unit"
		for srv in $SERVERS; do printf ' %14s' "${RES[$srv,$t]:-n/a}"; done
		bs=${RES[blkstack,$t]:-}
		best=
		for p in "${PEERS[@]}"; do
			v=${RES[$p,$t]:-}
			if [ -n "$bs" ] && [ -n "$v" ]; then
				printf ' %16s' "$(awk -v a="$bs" -v b="$v" 'BEGIN {printf "%.2fx", a / b}')"
				best=$(awk -v a="${best:-0}" -v b="$v" 'BEGIN {print (b > a) ? b : a}')
			else
				printf ' %16s' n/a
			fi
		done
		if [ -n "$bs" ] && [ -n "$best" ]; then
			printf ' %10s\n' "$(awk -v a="$bs" -v b="$best" 'BEGIN {printf "%.2fx", a / b}')"
		else
			printf ' %10s\n' n/a
		fi
	done
}

if [ -s "$W/linear-seqread" ] && [ -n "${RES[blkstack,seqread]:-}" ]; then
	lin=$(median <"$W/linear-seqread")
	echo
	awk -v a="${RES[blkstack,seqread]}" -v b="$lin" 'BEGIN {
		printf "seq read: blkstack LUKS %.1f MB/s, the same file through linear %.1f MB/s: %.0f%%\n",
			a, b, 100 * a / b }'
	[ -z "$OUT" ] || echo "blkstack-linear seqread $lin MB/s" >>"$OUT"
fi
