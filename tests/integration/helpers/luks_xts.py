#!/usr/bin/python3
"""luks_xts.py - an independent model of dm-crypt's aes-xts-plain64 on a LUKS data area.

    luks_xts.py decrypt IMG KEYHEX DATA_OFFSET SECTOR_SIZE IV_TWEAK OFFSET LENGTH OUT
    luks_xts.py encrypt IMG KEYHEX DATA_OFFSET SECTOR_SIZE IV_TWEAK OFFSET IN

OFFSET and LENGTH are bytes into the decrypted volume (multiples of SECTOR_SIZE).  Each
encryption sector is one AES-XTS unit whose tweak is the plain64 IV: the 512-byte sector
number of its start (plus IV_TWEAK), 64-bit little-endian, zero-padded to 16 bytes - as Linux
dm-crypt does without iv_large_sectors (what cryptsetup uses for LUKS2).  Uses
python3-cryptography (OpenSSL), nothing of blkstack.
"""
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def tweak(byte_off, iv_tweak):
    return ((byte_off // 512) + iv_tweak).to_bytes(16, "little")


def run(mode, img, keyhex, data_off, ss, iv_tweak, off, length, buf=None):
    key = bytes.fromhex(keyhex)
    if off % ss or length % ss:
        sys.exit("offset and length must be multiples of the sector size")
    out = bytearray()
    with open(img, "r+b") as f:
        for i in range(0, length, ss):
            c = Cipher(algorithms.AES(key), modes.XTS(tweak(off + i, iv_tweak)))
            f.seek(data_off + off + i)
            if mode == "decrypt":
                d = c.decryptor()
                out += d.update(f.read(ss)) + d.finalize()
            else:
                e = c.encryptor()
                f.write(e.update(buf[i:i + ss]) + e.finalize())
    return bytes(out)


def main():
    mode, img, keyhex = sys.argv[1:4]
    data_off, ss, iv_tweak, off = (int(x) for x in sys.argv[4:8])
    if mode == "decrypt":
        length = int(sys.argv[8])
        with open(sys.argv[9], "wb") as o:
            o.write(run(mode, img, keyhex, data_off, ss, iv_tweak, off, length))
    elif mode == "encrypt":
        buf = open(sys.argv[8], "rb").read()
        run(mode, img, keyhex, data_off, ss, iv_tweak, off, len(buf), buf)
    else:
        sys.exit("usage: see the comment at the top")


if __name__ == "__main__":
    main()
