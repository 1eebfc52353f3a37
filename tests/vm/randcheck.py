#!/usr/bin/python3
"""Reads random ranges (4 KiB to 1 MiB, 512-aligned) of DEVICE with many threads at once and
compares each with the same range of the SOURCE image: an independent oracle for the data."""
import os, random, sys, threading

dev, src, count, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
size = os.path.getsize(src)
errors = []

def worker(seed):
    rnd = random.Random(seed)
    d = os.open(dev, os.O_RDONLY)
    s = os.open(src, os.O_RDONLY)
    try:
        for _ in range(count):
            n = rnd.choice([4096, 8192, 65536, 131072, 262144 + 4096, 1 << 20])
            off = rnd.randrange(0, max(1, size - n)) // 512 * 512
            if os.pread(d, n, off) != os.pread(s, n, off):
                errors.append(f"mismatch at {off}+{n}")
                return
    except OSError as e:
        errors.append(f"{e}")
    finally:
        os.close(d); os.close(s)

ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
if errors:
    print("randcheck:", errors[0]); sys.exit(1)
print(f"randcheck: {threads} threads x {count} reads match")
