#!/usr/bin/python3
# cgd_decrypt.py - an independent reading of a NetBSD cgd volume, for cgd.sh.
#
# Reads the cgdconfig parameters file (the statements blkstack's generator writes: algorithm,
# iv-method, keylength and one keygen, storedkey or pkcs5_pbkdf2/sha1, with cgdconfig's
# base64 "bits" encoding and backslash continuations), derives the key as cgdconfig does
# (PBKDF2-HMAC-SHA1 of the passphrase over the salt bytes, keylength/8 bytes) and decrypts the
# first BYTES bytes of IMAGE as sys/dev/cgd.c does (block n's IV is E_k(n as 8 little-endian
# bytes, zero-padded), eight times for encblkno8; aes-xts uses n as the XTS tweak).  Prints the
# SHA-256 of the plaintext.  Nothing here uses blkstack.
#
#   cgd_decrypt.py IMAGE PARAMS BYTES [PASSPHRASE]
import base64
import hashlib
import re
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

image, params, nbytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(params).read().replace('\\\n', ' ')
text = re.sub(r'#[^;\n]*', '', text)


def value(name):
    m = re.search(r'(?:^|[;\n{])\s*' + re.escape(name) + r'\s+([^;]+);', text)
    return m.group(1).strip() if m else None


def bits(v):
    raw = base64.b64decode(''.join(v.split()))
    n = int.from_bytes(raw[:4], 'big')
    return raw[4:4 + (n + 7) // 8]


alg, iv = value('algorithm'), value('iv-method') or 'encblkno1'
keylen = int(value('keylength'))
if 'storedkey' in text:
    key = bits(re.search(r'storedkey\s+key\s+([^;]+);', text).group(1))
else:
    salt = bits(value('salt'))
    key = hashlib.pbkdf2_hmac('sha1', sys.argv[4].encode(), salt, int(value('iterations')),
                              keylen // 8)
assert len(key) == keylen // 8


def ecb(k, b):
    e = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return e.update(b) + e.finalize()


data = open(image, 'rb').read()[:nbytes]
plain = bytearray()
for n in range(len(data) // 512):
    blk = n.to_bytes(8, 'little') + bytes(8)
    if alg == 'aes-xts':
        mode = modes.XTS(blk)
    else:
        for _ in range(8 if iv in ('encblkno8', 'encblkno') else 1):
            blk = ecb(key, blk)
        mode = modes.CBC(blk)
    d = Cipher(algorithms.AES(key), mode).decryptor()
    plain += d.update(data[n * 512:(n + 1) * 512]) + d.finalize()
print(hashlib.sha256(plain).hexdigest())
