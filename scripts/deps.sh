#!/bin/sh
# Installs the Debian 12 packages blkstack needs, idempotently: only what is missing is
# installed, so a second run costs one dpkg-query.  Usage: scripts/deps.sh build|run|check
set -eu

build="meson ninja-build pkg-config gcc clang libc6-dev libjson-c-dev libssl-dev libfuse3-dev
 fuse3 libnbd-dev libcmocka-dev libisal-dev liburing-dev libargon2-dev"
run="libnbd-bin"
check="libnbd-bin python3-libnbd nbdkit qemu-utils qemu-block-extra fio e2fsprogs util-linux
 kmod cryptsetup-bin mdadm python3 python3-cryptography libclang-rt-14-dev xxd xz-utils
 jq mount procps iproute2"

case "${1:-build}" in
build) want="$build" ;;
run) want="$build $run" ;;
check) want="$build $check" ;;
*) echo "usage: $0 build|run|check" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$s" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "blkstack needs these Debian packages:$missing" >&2
	echo "run this as root (or install them) and try again" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
