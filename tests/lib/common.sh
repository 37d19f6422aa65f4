# tests/lib/common.sh - shared helpers for integration tests (source it first).
#
# Each test runs against BLKSTACK_BUILD (a build directory), in its own temporary directory
# $T, with its own daemon (control socket $T/ctl.sock, NBD socket $T/nbd.sock).  Everything the
# test sets up (daemon, FUSE exports, loop devices, mounts) is torn down on exit, and a daemon
# that did not stop cleanly (exit status, sanitizer report) fails the test.
set -euo pipefail

: "${BLKSTACK_BUILD:?set BLKSTACK_BUILD to a build directory}"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BS=$BLKSTACK_BUILD/blkstack
BSD=$BLKSTACK_BUILD/blkstackd
PY=/usr/bin/python3 # Debian's python, which has python3-libnbd and python3-cryptography
T=$(mktemp -d /tmp/blkstack-test.XXXXXX)
export BLKSTACK_CONTROL=$T/ctl.sock
NBD_SOCK=$T/nbd.sock
DAEMON_PID=
_MOUNTS=()
_LOOPS=()
_EXPORTS=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
skip() {
	echo "SKIP: $*"
	exit 77
}

# nbd URI of a device served by the test daemon.
uri() { echo "nbd+unix:///$1?socket=$NBD_SOCK"; }

# Starts the daemon and waits for its "ready" line (sockets a killed daemon left behind
# would otherwise look like a running one).
start_daemon() {
	local before
	before=$(grep -c ' ready$' "$T/daemon.log" 2>/dev/null || true)
	"$BSD" --foreground --control "$BLKSTACK_CONTROL" --nbd "unix:$NBD_SOCK" "$@" \
		>>"$T/daemon.log" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 100); do
		[ "$(grep -c ' ready$' "$T/daemon.log")" -gt "${before:-0}" ] &&
			[ -S "$BLKSTACK_CONTROL" ] && [ -S "$NBD_SOCK" ] && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/daemon.log" >&2
	fail "daemon did not start"
}

# Stops the daemon with SIGTERM; fails unless it exits 0 with no sanitizer report.
stop_daemon() {
	local rc=0
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID" || rc=$?
	DAEMON_PID=
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/daemon.log"; then
		cat "$T/daemon.log" >&2
		fail "sanitizer report from the daemon"
	fi
	[ $rc -eq 0 ] || { tail -n 30 "$T/daemon.log" >&2; fail "daemon exited with status $rc"; }
}

# Kills the daemon without letting it clean up (crash simulation).
kill_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -KILL "$DAEMON_PID" 2>/dev/null || true
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
}

# Registers things for cleanup.
track_mount() { _MOUNTS+=("$1"); }
track_loop() { _LOOPS+=("$1"); }
track_export() { _EXPORTS+=("$1"); }

_cleanup() {
	local rc=$?
	set +e
	for m in "${_MOUNTS[@]}"; do mountpoint -q "$m" && umount "$m"; done
	for l in "${_LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
	for e in "${_EXPORTS[@]}"; do "$BS" export remove "$e" >/dev/null 2>&1; done
	if [ -n "$DAEMON_PID" ]; then
		kill -TERM "$DAEMON_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$DAEMON_PID" 2>/dev/null
	fi
	for e in "${_EXPORTS[@]}"; do mountpoint -q "$e" && umount -l "$e"; done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -f "$T/daemon.log" ]; then
		echo "--- daemon log (tail) ---"
		tail -n 30 "$T/daemon.log"
	fi
	if [ -n "${BLKSTACK_KEEP:-}" ]; then
		echo "kept $T"
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap _cleanup EXIT

# expect_error PATTERN CMD... : CMD must fail, print exactly one line on stderr matching
# PATTERN (grep -E), and print nothing on stdout.
expect_error() {
	local pat=$1 rc=0
	shift
	"$@" >"$T/.out" 2>"$T/.err" || rc=$?
	[ $rc -ne 0 ] || fail "expected failure, but succeeded: $*"
	[ "$(wc -l <"$T/.err")" -eq 1 ] || { cat "$T/.err" >&2; fail "expected one line on stderr: $*"; }
	grep -qE -- "$pat" "$T/.err" || { cat "$T/.err" >&2; fail "error does not match /$pat/: $*"; }
	[ ! -s "$T/.out" ] || { cat "$T/.out" >&2; fail "unexpected output on stdout: $*"; }
	EXPECT_RC=$rc
}

# Sparse image files.
mkimg() { # size files...
	local size=$1
	shift
	for f in "$@"; do truncate -s "$size" "$f"; done
}

# Random data file of N MiB.
randfile() { head -c "$(($2 * 1048576))" /dev/urandom >"$1"; }

sectors() { echo $(($(stat -c %s "$1") / 512)); }
# raid_detail NAME FIELD: one field of an md array's `detail` (dm message NAME 0 detail)
raid_detail() { $BS dm message "$1" 0 detail | sed -n "s/^$2: //p"; }
# raid_scrub NAME: `raid check --wait`, then the counters it left in REP (repaired_cnt) and
# MM (mismatch_cnt)
raid_scrub() {
	$BS raid check "$1" --wait
	REP=$(raid_detail "$1" repaired_cnt)
	MM=$(raid_detail "$1" mismatch_cnt)
}
