#!/bin/bash
# NBD over TLS on a TCP listener: STARTTLS with a real client (libnbd/GnuTLS), plaintext
# refused with --tls-required, client certificates checked with --tls-ca.
source "$(dirname "$0")/../lib/common.sh"

cd "$T"
mkdir pki cli nocert
# A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
openssl req -x509 -newkey rsa:2048 -nodes -keyout pki/ca-key.pem -out pki/ca-cert.pem -days 2 \
	-subj "/CN=blkstack test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout pki/server-key.pem -out pki/server.csr \
	-subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >pki/ext
openssl x509 -req -in pki/server.csr -CA pki/ca-cert.pem -CAkey pki/ca-key.pem -CAcreateserial \
	-out pki/server-cert.pem -days 2 -extfile pki/ext 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout cli/client-key.pem -out cli/client.csr \
	-subj "/CN=client" 2>/dev/null
openssl x509 -req -in cli/client.csr -CA pki/ca-cert.pem -CAkey pki/ca-key.pem \
	-CAcreateserial -out cli/client-cert.pem -days 2 2>/dev/null
cp pki/ca-cert.pem cli/
cp pki/ca-cert.pem nocert/

port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkimg 8M disk.img
randfile data.bin 4

# 1. TLS required, no client certificates.
P=$(port)
start_daemon --nbd "tcp:127.0.0.1:$P" --tls-cert pki/server-cert.pem --tls-key pki/server-key.pem \
	--tls-required
$BS dm create d --table "0 16384 linear $T/disk.img 0"
tls="nbds://127.0.0.1:$P/d?tls-certificates=$T/nocert"
[ "$(nbdinfo --size "$tls")" = 8388608 ] || fail "nbdinfo over TLS"
nbdcopy data.bin "$tls"
nbdcopy "$tls" back.bin
cmp <(head -c 4194304 back.bin) data.bin || fail "data over TLS differs"
cmp <(head -c 4194304 disk.img) data.bin || fail "data written over TLS not on disk"
if nbdinfo --size "nbd://127.0.0.1:$P/d" 2>err.txt; then fail "plaintext accepted with --tls-required"; fi
grep -qi "tls" err.txt || fail "plaintext refusal does not mention TLS: $(cat err.txt)"
# the unix socket stays plaintext
[ "$(nbdinfo --size "$(uri d)")" = 8388608 ] || fail "unix socket after TLS"
stop_daemon

# 2. TLS offered but not required; client certificates required by --tls-ca.
P=$(port)
start_daemon --nbd "tcp:127.0.0.1:$P" --tls-cert pki/server-cert.pem --tls-key pki/server-key.pem \
	--tls-ca pki/ca-cert.pem
$BS dm create d --table "0 16384 linear $T/disk.img 0"
[ "$(nbdinfo --size "nbds://127.0.0.1:$P/d?tls-certificates=$T/cli")" = 8388608 ] ||
	fail "TLS with a client certificate"
if nbdinfo --size "nbds://127.0.0.1:$P/d?tls-certificates=$T/nocert" 2>/dev/null; then
	fail "TLS without a client certificate accepted despite --tls-ca"
fi
[ "$(nbdinfo --size "nbd://127.0.0.1:$P/d")" = 8388608 ] || fail "optional TLS refused plaintext"
stop_daemon

# 3. Bad TLS material: one line, exit 1, nothing started.
expect_error 'needs both --tls-cert and --tls-key' \
	$BSD --foreground --control "$T/c2.sock" --nbd "unix:$T/n2.sock" --tls-cert pki/server-cert.pem
expect_error 'cannot load the private key' \
	$BSD --foreground --control "$T/c2.sock" --nbd "unix:$T/n2.sock" \
	--tls-cert pki/server-cert.pem --tls-key pki/ca-key.pem
[ ! -e "$T/c2.sock" ] || fail "a daemon that failed to start left its socket"
log ok
