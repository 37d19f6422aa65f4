#!/usr/bin/python3
"""luks_aead.py - an independent reader of LUKS2 volumes with authenticated encryption.

  luks_aead.py read SEGIMG CIPHER INTEGRITY VKHEX FIRST COUNT

SEGIMG is the data segment of the volume (the image from the segment's offset on: it
begins with the dm-integrity superblock), CIPHER and INTEGRITY the segment's "encryption"
and integrity "type" (aes-xts-plain64 + hmac(sha256), aes-gcm-random + aead, ...), VKHEX the
volume key.  Writes the plaintext of the 512-byte sectors FIRST .. FIRST+COUNT-1 (whole
encryption sectors) to stdout, after checking each sector's tag; exits 1 naming the first
sector whose tag does not match.  The journal is not read: close the volume first.

Written from the description of dm-crypt's AEAD sector format (associated data = le64 of
the 512-byte sector number || IV; the metadata is the auth tag, then the IV when it is
random; the volume key is the cipher key, then the HMAC key) with python3-cryptography,
separately from blkstack's C code, using integrity_check.py's layout of the tags.
"""
import hashlib
import hmac
import os
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.exceptions import InvalidTag

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from integrity_check import Image  # noqa: E402

HMACS = {"hmac(sha1)": "sha1", "hmac(sha256)": "sha256", "hmac(sha512)": "sha512"}


def main():
    if len(sys.argv) < 8 or sys.argv[1] != "read":
        print(__doc__)
        sys.exit(2)
    seg, cipher, integ, vkhex = sys.argv[2:6]
    first, count = int(sys.argv[6]), int(sys.argv[7])
    img = Image(seg)
    ss = 512 * img.spb
    name, mode, ivmode = cipher.split("-")
    if name != "aes":
        sys.exit("only aes")
    vk = bytes.fromhex(vkhex)
    h = HMACS.get(integ)
    mac_len = hashlib.new(h).digest_size if h else 0
    ckey, mkey = vk[:len(vk) - mac_len], vk[len(vk) - mac_len:]
    iv_size = 12 if mode == "gcm" else 16
    stored_iv = iv_size if ivmode == "random" else 0
    auth = img.tag_size - stored_iv
    step = ss // 512
    if first % step or count % step:
        sys.exit("FIRST and COUNT must be whole %d-byte sectors" % ss)
    out = sys.stdout.buffer
    for s in range(first, first + count, step):
        data = img.data[img.locate(s)[0]:img.locate(s)[0] + ss]
        tag = img.tag(s)
        if ivmode == "random":
            iv = tag[auth:auth + iv_size]
        elif ivmode == "plain64":
            iv = s.to_bytes(8, "little") + bytes(iv_size - 8)
        elif ivmode == "plain":
            iv = (s & 0xFFFFFFFF).to_bytes(4, "little") + bytes(iv_size - 4)
        else:
            sys.exit("IV mode %s not supported here" % ivmode)
        aad = s.to_bytes(8, "little") + iv
        if mode == "gcm":
            try:
                plain = AESGCM(ckey).decrypt(iv, data + tag[:16], aad)
            except InvalidTag:
                sys.exit("sector %d: tag mismatch" % s)
        else:
            want = hmac.new(mkey, aad + data, h).digest()[:auth]
            if not hmac.compare_digest(want, tag[:auth]):
                sys.exit("sector %d: tag mismatch" % s)
            m = modes.XTS(iv) if mode == "xts" else modes.CBC(iv)
            d = Cipher(algorithms.AES(ckey), m).decryptor()
            plain = d.update(data) + d.finalize()
        out.write(plain)


if __name__ == "__main__":
    main()
