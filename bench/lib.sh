# bench/lib.sh - what the benchmarks that drive one blkstackd share; sourced, not run.
#
#   bench_daemon NAME   a scratch directory $W (NAME.XXXXXX under $TMPDIR or /tmp) and one
#                       blkstackd from $BUILD serving NBD on $W/nbd.sock, its control socket
#                       exported as BLKSTACK_CONTROL; both go away when the script exits
#   median              the median of the numbers on standard input (spaces or newlines)

bench_cleanup() {
	if [ -n "${BENCH_PID:-}" ]; then
		kill "$BENCH_PID" 2>/dev/null || true
		wait "$BENCH_PID" 2>/dev/null || true
	fi
	[ -z "${W:-}" ] || rm -rf "$W"
}

bench_daemon() {
	W=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
	export BLKSTACK_CONTROL=$W/ctl.sock
	trap bench_cleanup EXIT
	"$BUILD/blkstackd" --foreground --control "$BLKSTACK_CONTROL" --nbd "unix:$W/nbd.sock" \
		>"$W/daemon.log" 2>&1 &
	BENCH_PID=$!
	for _ in $(seq 100); do
		[ -S "$W/nbd.sock" ] && [ -S "$BLKSTACK_CONTROL" ] && return 0
		sleep 0.1
	done
	cat "$W/daemon.log" >&2
	echo "$0: blkstackd did not start" >&2
	exit 1
}

median() {
	tr ' ' '\n' | { grep . || true; } | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
