#!/bin/sh
# `make run`: the daemon in the foreground on the embedded default stack.
set -eu
build=${1:-build}
dir=${2:-var}
mkdir -p "$dir"
sock=/run/blkstack/nbd.sock
cat <<EOT
Starting blkstackd on the default stack (backing files under $dir/). Stop it with Ctrl-C.

In another terminal:
  nbdinfo 'nbd+unix:///default?socket=$sock'
  qemu-img info 'nbd+unix:///default?socket=$sock'
  $build/blkstack dm table
  $build/blkstack export fuse default /tmp/default.img    # then losetup/mkfs/mount it

EOT
exec "$build/blkstackd" --foreground --default-stack "$dir"
