#!/bin/sh
# fuzz/run.sh FUZZER CORPUS_DIR [SECONDS] - runs one libFuzzer target for a bounded time on a
# scratch copy of its corpus (the repository's corpus is never modified).  Exit 0 when no
# crash, leak or sanitizer error was found.
set -eu
fuzzer=$1
corpus=$2
secs=${3:-${BLKSTACK_FUZZ_SECONDS:-20}}
work=$(mktemp -d /tmp/blkstack-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
[ -d "$corpus" ] && cp -r "$corpus"/. "$work/corpus/" 2>/dev/null || true
cd "$work"
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -error_exitcode=1 \
	-artifact_prefix="$work/" "$work/corpus"
