#!/usr/bin/python3
"""Reads DEVICE whole, pass after pass, in direct reads of one image block, and compares each
read with the same range of SOURCE: every read must return the source's bytes or fail with EIO
(errno 5), each within LIMIT seconds. Stops after PASSES passes, or at the end of the pass
during which SECONDS ran out (at least one pass is read whole).

    eiocheck.py DEVICE SOURCE BLOCK_SIZE PASSES SECONDS LIMIT

Prints one line per pass; exits 1 on wrong data, another error, or a read over the limit."""
import mmap, os, sys, time

dev, src = sys.argv[1], sys.argv[2]
bs, passes, secs, limit = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
size = os.path.getsize(src)
fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
s = os.open(src, os.O_RDONLY)
buf = mmap.mmap(-1, bs)
t_start = time.monotonic()
bad = 0
for p in range(passes):
    ok = eio = 0
    slowest = 0.0
    for off in range(0, size, bs):
        n = min(bs, size - off)
        t0 = time.monotonic()
        try:
            got = os.preadv(fd, [memoryview(buf)[:n]], off)
            err = 0
        except OSError as e:
            err = e.errno
        dt = time.monotonic() - t0
        slowest = max(slowest, dt)
        if dt > limit:
            print(f"FAIL: read at {off}+{n} took {dt:.1f} s (limit {limit:.0f} s)")
            bad += 1
        if err == 5:
            eio += 1
        elif err:
            print(f"FAIL: read at {off}+{n}: {os.strerror(err)} (errno {err}), not EIO")
            bad += 1
        elif got != n or buf[:n] != os.pread(s, n, off):
            print(f"FAIL: read at {off}+{n} returned wrong data ({got} bytes)")
            bad += 1
        else:
            ok += 1
        if bad:
            sys.exit(1)
    print(f"pass {p + 1}: {ok} reads right, {eio} EIO, slowest {slowest:.2f} s")
    if time.monotonic() - t_start > secs:
        break
