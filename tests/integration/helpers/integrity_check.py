#!/usr/bin/python3
"""integrity_check.py - an independent reader of dm-integrity images, for the tests.

  integrity_check.py verify IMG ALG [KEYHEX] [--meta META]   every tag matches its block
  integrity_check.py data IMG [--meta META]                  the logical data, to stdout
  integrity_check.py journal IMG                             used entries in the journal
  integrity_check.py tagoff IMG SECTOR [--meta META]         byte offset of SECTOR's tag
  integrity_check.py dataoff IMG SECTOR                      byte offset of SECTOR's data

Written from Linux's Documentation/admin-guide/device-mapper/dm-integrity.rst and the
kernel's superblock layout, separately from blkstack's C code, with Python's hashlib and
hmac (and a table CRC-32C): the tests use it as a second opinion on what blkstack wrote.
"""
import hashlib
import hmac
import struct
import sys

SB_FIXED_PADDING = 0x8
SB_FIXED_HMAC = 0x10


def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


T = crc32c_table()


def crc32c(data, c=0xFFFFFFFF):
    t = T
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c


def xxh64(data, seed=0):
    p1, p2, p3, p4, p5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                          0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)
    m = (1 << 64) - 1

    def rotl(x, r):
        return ((x << r) | (x >> (64 - r))) & m

    def rnd(acc, v):
        return (rotl((acc + v * p2) & m, 31) * p1) & m

    n = len(data)
    i = 0
    if n >= 32:
        v = [(seed + p1 + p2) & m, (seed + p2) & m, seed, (seed - p1) & m]
        while i + 32 <= n:
            for k in range(4):
                v[k] = rnd(v[k], struct.unpack_from("<Q", data, i + 8 * k)[0])
            i += 32
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & m
        for k in range(4):
            h = ((h ^ rnd(0, v[k])) * p1 + p4) & m
    else:
        h = (seed + p5) & m
    h = (h + n) & m
    while i + 8 <= n:
        h ^= rnd(0, struct.unpack_from("<Q", data, i)[0])
        h = (rotl(h, 27) * p1 + p4) & m
        i += 8
    if i + 4 <= n:
        h ^= (struct.unpack_from("<I", data, i)[0] * p1) & m
        h = (rotl(h, 23) * p2 + p3) & m
        i += 4
    while i < n:
        h ^= (data[i] * p5) & m
        h = (rotl(h, 11) * p1) & m
        i += 1
    h ^= h >> 33
    h = (h * p2) & m
    h ^= h >> 29
    h = (h * p3) & m
    h ^= h >> 32
    return h


class Image:
    def __init__(self, path, meta=None):
        self.data = open(path, "rb").read()
        self.meta = open(meta, "rb").read() if meta else self.data
        sb = self.meta[:64]
        if sb[:8] != b"integrt\0":
            sys.exit("%s: no dm-integrity superblock" % (meta or path))
        (self.version, self.log2_il, self.tag_size, self.sections, self.provided, self.flags,
         self.log2_spb, _) = struct.unpack_from("<BBHIQIBB", sb, 8)
        self.salt = sb[48:64]
        self.spb = 1 << self.log2_spb
        self.has_meta = meta is not None
        entry = -(-(8 + 8 * self.spb + self.tag_size) // 8) * 8
        per_sector = 504 // entry if not self.flags & 1 else 496 // entry
        self.section_entries = per_sector * 8
        self.section_sectors = (self.section_entries << self.log2_spb) + 8
        self.initial = 8 + self.section_sectors * self.sections
        if not self.has_meta:
            pad = 4096 if self.flags & SB_FIXED_PADDING else 512 << 8
            run = self.tag_size << (self.log2_il - self.log2_spb)
            self.metadata_run = -(-run // pad) * pad // 512

    def locate(self, s):
        """(data byte offset, tag byte offset) of logical sector s."""
        if self.has_meta:
            return s * 512, self.initial * 512 + (s >> self.log2_spb) * self.tag_size
        il = 1 << self.log2_il
        area, off = s // il, s % il
        area_base = self.initial + area * (il + self.metadata_run)
        data = area_base + self.metadata_run + off
        return data * 512, area_base * 512 + (off >> self.log2_spb) * self.tag_size

    def block(self, s):
        d, _ = self.locate(s)
        return self.data[d:d + 512 * self.spb]

    def tag(self, s):
        _, t = self.locate(s)
        return self.meta[t:t + self.tag_size]


def digest(alg, key, prefix, block):
    msg = prefix + block
    if alg == "crc32c":
        return struct.pack("<I", ~crc32c(msg) & 0xFFFFFFFF)
    if alg == "xxhash64":
        return struct.pack("<Q", xxh64(msg))
    if alg.startswith("hmac-"):
        return hmac.new(key, msg, alg[5:]).digest()
    return hashlib.new(alg, msg).digest()


def cmd_verify(img, alg, key):
    bad = 0
    n = 0
    for s in range(0, img.provided, img.spb):
        prefix = (img.salt if img.flags & SB_FIXED_HMAC else b"") + struct.pack("<Q", s)
        want = digest(alg, key, prefix, img.block(s))[:img.tag_size]
        want += bytes(img.tag_size - len(want))
        if img.tag(s) != want:
            if bad < 5:
                print("sector %d: tag %s, data hashes to %s" % (s, img.tag(s).hex(), want.hex()))
            bad += 1
        n += 1
    if bad:
        print("verify: %d of %d blocks have wrong tags" % (bad, n))
        sys.exit(1)
    print("verify: %d blocks, every tag matches (%s, tag %d bytes, %d-byte blocks)"
          % (n, alg, img.tag_size, 512 * img.spb))


def cmd_journal(img):
    used = 0
    for i in range(img.sections):
        base = (8 + i * img.section_sectors) * 512
        entry = -(-(8 + 8 * img.spb + img.tag_size) // 8) * 8
        for n in range(img.section_entries):
            off = base + (n % 8) * 512 + (n // 8) * entry
            if struct.unpack_from("<I", img.meta, off + 4)[0] not in (0xFFFFFFFF, 0xFFFFFFFE):
                used += 1
    print(used)


def main():
    args = sys.argv[1:]
    meta = None
    if "--meta" in args:
        k = args.index("--meta")
        meta = args[k + 1]
        del args[k:k + 2]
    if len(args) < 2:
        print(__doc__)
        sys.exit(2)
    img = Image(args[1], meta)
    if args[0] == "verify":
        cmd_verify(img, args[2], bytes.fromhex(args[3]) if len(args) > 3 else b"")
    elif args[0] == "data":
        out = sys.stdout.buffer
        for s in range(0, img.provided, img.spb):
            out.write(img.block(s))
    elif args[0] == "journal":
        cmd_journal(img)
    elif args[0] == "tagoff":
        print(img.locate(int(args[2]))[1])
    elif args[0] == "dataoff":
        print(img.locate(int(args[2]))[0])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
