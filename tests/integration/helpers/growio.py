#!/usr/bin/python3
"""growio.py - random writes through NBD that keep a model file, for the grow test.

  growio.py write URI MODEL SECONDS SEED [STOPFILE]
      writes random data at random places inside the first len(MODEL) bytes of the
      device, one write at a time, applying each acknowledged write to MODEL too, until
      SECONDS pass or STOPFILE exists; flushes at the end and prints the number of writes.

After it ends, the device must equal MODEL byte for byte over that range.
"""

import os
import random
import sys
import time

import nbd

SECTOR = 512


def main():
    if len(sys.argv) < 6 or sys.argv[1] != "write":
        print(__doc__)
        sys.exit(2)
    uri, model, seconds, seed = sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
    stop = sys.argv[6] if len(sys.argv) > 6 else None
    rnd = random.Random(seed)
    size = os.path.getsize(model)
    h = nbd.NBD()
    h.connect_uri(uri)
    fd = os.open(model, os.O_RDWR)
    end = time.time() + seconds
    n = 0
    while time.time() < end and not (stop and os.path.exists(stop)):
        length = rnd.choice([512, 4096, 4096, 16384, 65536, 200704])
        off = rnd.randrange(0, (size - length) // SECTOR + 1) * SECTOR
        buf = rnd.randbytes(length)
        h.pwrite(buf, off)
        os.pwrite(fd, buf, off)
        n += 1
        if n % 16 == 0:
            h.flush()
    h.flush()
    h.shutdown()
    os.close(fd)
    print("%d writes" % n)


if __name__ == "__main__":
    main()
