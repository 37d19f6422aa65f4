#!/bin/bash
# timeout: 900
# The crash test of raid_crash.sh on RAID6 (four members: two data, P and Q): SIGKILL at
# random moments during random writes with flushes, restart, reassembly, byte-for-byte
# verification, the last two fifths degraded; its own seeds, so it adds to the RAID5 run.
export RAID_CRASH_LEVEL=6
export RAID_CRASH_SEED=${RAID_CRASH_SEED:-600000}
exec bash "$(dirname "$0")/raid_crash.sh"
