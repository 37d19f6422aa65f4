#!/usr/bin/python3
# plain_decrypt.py - an independent reading of a plain dm-crypt volume, for plain.sh.
#
# Derives the key the way cryptsetup 2.6 plain mode does (cryptsetup(8), "NOTES ON PASSPHRASE
# PROCESSING FOR PLAIN MODE": passphrase hashed as H(P) || H("A" P) || ... cut to the key size;
# a key file's bytes used directly) and decrypts the mapped area of IMAGE with
# python3-cryptography following Linux's dm-crypt.rst (IVs from 512-byte sector numbers plus
# the IV offset, or sector-size units with iv_large_sectors).  Prints the SHA-256 of the
# plaintext.  Nothing here uses blkstack.
#
#   plain_decrypt.py IMAGE --cipher aes-xts-plain64 --key-bits 512
#       (--pass TEXT [--hash NAME] | --key-file F [--keyfile-offset N])
#       [--offset S] [--skip S] [--size S] [--sector-size B] [--large]
import argparse
import hashlib
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

p = argparse.ArgumentParser()
p.add_argument('image')
p.add_argument('--cipher', required=True)
p.add_argument('--key-bits', type=int, required=True)
p.add_argument('--pass', dest='passphrase')
p.add_argument('--hash', default='ripemd160')
p.add_argument('--key-file')
p.add_argument('--keyfile-offset', type=int, default=0)
p.add_argument('--offset', type=int, default=0)
p.add_argument('--skip', type=int, default=0)
p.add_argument('--size', type=int)
p.add_argument('--sector-size', type=int, default=512)
p.add_argument('--large', action='store_true')
a = p.parse_args()

n = a.key_bits // 8
if a.key_file:
    key = open(a.key_file, 'rb').read()[a.keyfile_offset:a.keyfile_offset + n]
    assert len(key) == n, 'key file too short'
else:
    out, r = b'', 0
    while len(out) < n:
        out += hashlib.new(a.hash, b'A' * r + a.passphrase.encode()).digest()
        r += 1
    key = out[:n]

img = open(a.image, 'rb').read()
size = a.size if a.size is not None else len(img) // 512 - a.offset
area = img[a.offset * 512:(a.offset + size) * 512]
ss = a.sector_size
_, chain, ivmode = a.cipher.split('-', 2)


def ecb(k, b):
    e = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return e.update(b) + e.finalize()


def iv(sector):
    if ivmode == 'plain64':
        return sector.to_bytes(8, 'little') + bytes(8)
    if ivmode == 'plain':
        return (sector & 0xffffffff).to_bytes(4, 'little') + bytes(12)
    if ivmode == 'essiv:sha256':
        return ecb(hashlib.sha256(key).digest(), sector.to_bytes(8, 'little') + bytes(8))
    sys.exit('unsupported IV mode ' + ivmode)


plain = bytearray()
for i in range(len(area) // ss):
    sector = a.skip + i * (ss // 512)
    if a.large:
        sector //= ss // 512
    mode = modes.XTS(iv(sector)) if chain == 'xts' else modes.CBC(iv(sector))
    d = Cipher(algorithms.AES(key), mode).decryptor()
    plain += d.update(area[i * ss:(i + 1) * ss]) + d.finalize()
print(hashlib.sha256(plain).hexdigest())
