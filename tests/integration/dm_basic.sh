#!/bin/bash
# dm verbs: create/reload/suspend/resume/remove semantics, table round trips, info, deps,
# and bad input that must change nothing.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
mkimg 8M a.img b.img c.img
start_daemon

# create from --table, from a file and from stdin
$BS dm create lin --table "0 16384 linear $T/a.img 0"
echo "0 8192 zero" >ztable
$BS dm create z ztable
printf '0 4096 linear %s 0\n4096 4096 linear %s 0\n' "$T/b.img" "$T/c.img" | $BS dm create two
[ "$($BS dm table two)" = "$(printf '0 4096 linear %s 0\n4096 4096 linear %s 0' "$T/b.img" "$T/c.img")" ] ||
	fail "two-segment table did not read back"

# relative paths are resolved against the client's directory
$BS dm create rel --table "0 2048 linear a.img 2048"
[ "$($BS dm table rel)" = "0 2048 linear $T/a.img 2048" ] || fail "relative path not resolved"

# every table line reads back into create unchanged
for d in lin z two rel; do
	$BS dm table $d >t.$d
	$BS dm create copy-$d t.$d
	cmp <($BS dm table copy-$d) t.$d || fail "table of $d does not round-trip"
	$BS dm remove copy-$d
done

# ls, info, targets
$BS dm ls | grep -qx "lin	(254:[0-9]*)" || fail "ls"
$BS dm ls --target zero | grep -q '^z' || fail "ls --target"
$BS dm ls --target zero | grep -q '^lin' && fail "ls --target lists a linear device"
$BS dm info lin | grep -q '^State: *ACTIVE$' || fail "info state"
$BS dm info lin | grep -q '^Tables present: *LIVE$' || fail "info tables"
$BS dm targets | grep -q '^striped' || fail "targets"

# reload: inactive until resume; the live table keeps serving
$BS dm reload lin --table "0 8192 zero"
$BS dm info lin | grep -q 'LIVE & INACTIVE' || fail "reload did not load an inactive table"
[ "$($BS dm table lin)" = "0 16384 linear $T/a.img 0" ] || fail "reload changed the live table"
[ "$($BS dm table --inactive lin)" = "0 8192 zero" ] || fail "inactive table"
$BS dm clear lin
$BS dm info lin | grep -q '^Tables present: *LIVE$' || fail "clear"
$BS dm reload lin --table "0 8192 zero"
$BS dm resume lin
[ "$($BS dm table lin)" = "0 8192 zero" ] || fail "resume did not swap the table"
$BS dm info lin | grep -q '^Tables present: *LIVE$' || fail "after resume"

# suspend / resume
$BS dm suspend lin
$BS dm info lin | grep -q '^State: *SUSPENDED$' || fail "suspend"
$BS dm suspend --noflush lin
$BS dm resume lin
$BS dm info lin | grep -q '^State: *ACTIVE$' || fail "resume"

# bad tables are refused with one line and change nothing
before=$($BS dm table)
expect_error 'unknown target type "bogus"' $BS dm create bad --table "0 10 bogus"
expect_error 'gap or overlap' $BS dm create bad --table "$(printf '0 10 zero\n11 10 zero')"
expect_error 'zero-length' $BS dm create bad --table "0 0 zero"
expect_error 'invalid start or length' $BS dm create bad --table "0 -5 zero"
expect_error 'no such file' $BS dm create bad --table "0 10 linear $T/missing.img 0"
expect_error 'too small for target' $BS dm create bad --table "0 99999 linear $T/a.img 0"
expect_error 'striped: target length not divisible by number of stripes' \
	$BS dm create bad --table "0 1001 striped 2 8 $T/a.img 0 $T/b.img 0"
expect_error 'empty table' $BS dm create bad --table " "
expect_error 'already exists' $BS dm create lin --table "0 10 zero"
expect_error 'invalid device name' $BS dm create "a/b" --table "0 10 zero"
expect_error 'unknown target' $BS dm reload lin --table "0 10 bogus"
expect_error 'does not exist' $BS dm remove nosuch
expect_error 'does not exist' $BS dm resume nosuch
[ "$($BS dm table)" = "$before" ] || fail "a failed command changed the tables"
$BS dm info lin | grep -q '^Tables present: *LIVE$' || fail "failed reload left an inactive table"
$BS dm ls | grep -q '^bad' && fail "a failed create left a device behind"

# stacking, deps and busy devices
$BS dm create top --table "0 2048 linear /dev/mapper/two 0"
$BS dm deps top | grep -q '(/dev/mapper/two)' || fail "deps"
expect_error 'busy' $BS dm remove two
expect_error 'use itself' $BS dm reload two --table "0 2048 linear /dev/mapper/top 0"
expect_error 'use itself' $BS dm reload two --table "0 2048 linear /dev/mapper/two 0"
$BS dm remove top
$BS dm remove two

# a device open over NBD cannot be removed
$PY - "$NBD_SOCK" <<'PY' &
import nbd, sys, time
h = nbd.NBD()
h.set_export_name("rel")
h.connect_unix(sys.argv[1])
time.sleep(3)
h.shutdown()
PY
pyp=$!
sleep 1
expect_error 'busy' $BS dm remove rel
wait $pyp
$BS dm remove rel

# message and wait
expect_error 'does not take messages' $BS dm message z 0 hello
( sleep 1; $BS dm remove z ) &
remover=$!
expect_error 'removed' $BS dm wait z
wait $remover

# malformed CLI use
expect_error 'missing arguments' $BS dm create
expect_error 'unknown command' $BS dm frobnicate

stop_daemon
log "ok"
