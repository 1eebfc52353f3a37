#!/usr/bin/python3
"""A frozen helper stalls only its own device.

    stallcheck.py A_DEV A_INDEX A_TIMEOUT_MS A_HELPER_PID B_DEV B_SOURCE READS

1. Measures device B (B_SOURCE is its image): random 4 KiB direct reads over a cached region,
   and sequential 64 KiB direct reads of an uncached region, each for 5 one-second windows.
2. Freezes A's helper (SIGSTOP) and keeps READS direct reads of uncached blocks of A in flight
   (4 KiB ones at distinct offsets; one in five 8 KiB, spanning two blocks): as each one ends,
   the next is submitted. Each read is timed on its own, from submission to completion.
3. Once A's reads are in flight, measures B again the same way (another uncached region).
4. Stops reading A, waits for the last reads, thaws the helper, measures B a third time.
Fails if one of B's figures while A is frozen falls below RATIO of the same figure before or
after, or if any read of A does not fail with EIO (errno 5) within A_TIMEOUT_MS + 1 s (plus
the longest time the whole VM stood still meanwhile, when over 0.25 s: a heartbeat thread
measures it).

Under TCG the VM's speed varies a lot from second to second, more so when the host is busy
(other VMs), and the reads of A, all failing and resubmitted together every A_TIMEOUT_MS, take
the CPU in bursts; none of that is a stall. So B's figure while A is frozen is its best
one-second window, and its reference the lower of the median windows before and after. A
stalled B has no good window at all: with the stall this checks for, B's figures fall below
0.1 of the reference; with nothing frozen, on a busy host, the ratio went as low as 0.7, hence
RATIO 0.5.

The reads of A are asynchronous (Linux AIO from one thread, in a child process): 300 threads
waking together would both load the CPU and add their wait for the interpreter lock to the
times measured. B is measured in another child process.
"""
import ctypes, json, mmap, os, random, signal, statistics, struct, subprocess, sys, threading, time

RATIO = 0.5
MIB = 1 << 20
# Regions of B (a 24 MiB image whose bytes from 3 MiB on are random and unique): the warm-up
# (which caches the cached region and gets the helper's connections going), then the uncached
# regions read before A is frozen, while it is, and after. Gaps of 1 MiB or more: the
# driver's readahead reads up to 1 MiB past a sequential reader.
B_WARM = (0, 4 * MIB)
B_CACHED = (3 * MIB, 4 * MIB)
B_SEQ_BEFORE = (5 * MIB, 10 * MIB)
B_SEQ_DURING = (11 * MIB + MIB // 2, 16 * MIB + MIB // 2)
B_SEQ_AFTER = (18 * MIB, 23 * MIB)
WINDOWS = 5


def measure(dev, src, mode, start, end):
    """Child process: prints the bytes read in each one-second window (none for "warm"); a
    sequential read that reaches the region's end counts only its whole windows."""
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    s = os.open(src, os.O_RDONLY)
    n = {"random": 4096, "seq": 65536, "warm": 262144}[mode]
    buf = mmap.mmap(-1, n)
    rnd = random.Random(1)
    windows = [0] * WINDOWS
    off = start
    t0 = time.monotonic()
    while True:
        if mode == "random":
            off = rnd.randrange(start, end - n + 1) // 4096 * 4096
        elif off + n > end:
            t = time.monotonic() - t0
            windows = windows[:int(t)] if t >= 1 else [int(sum(windows) / t)]
            break
        got = os.preadv(fd, [buf], off)
        t = time.monotonic() - t0
        if got != n or buf[:n] != os.pread(s, n, off):
            print(f"B: wrong data at {off}+{n}", file=sys.stderr)
            sys.exit(1)
        if mode != "warm":
            if t >= WINDOWS:
                break
            windows[int(t)] += n
        if mode != "random":
            off += n
    print(json.dumps([] if mode == "warm" else windows))


def run_child(args, stdin=None):
    """Runs this script with `args` in a child process."""
    return subprocess.Popen([sys.executable, __file__] + args, stdout=subprocess.PIPE, stdin=stdin)


def finish_child(p, deadline, what):
    """The child's output; a child still running at `deadline` is killed and not waited for
    (a read stuck in D state must fail the check, not hang it)."""
    try:
        out, _ = p.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        raise SystemExit(f"FAIL: {what} still running after its time")
    if p.returncode != 0:
        raise SystemExit(f"FAIL: {what} failed")
    return out


def measure_b(dev, src, mode, region):
    """B's bytes read in each one-second window, in MiB."""
    p = run_child(["--measure", dev, src, mode, str(region[0]), str(region[1])])
    windows = json.loads(finish_child(p, time.monotonic() + 120, f"measuring B ({mode})"))
    return [round(w / MIB, 2) for w in windows]


class Iocb(ctypes.Structure):
    """struct iocb (linux/aio_abi.h, little-endian)."""
    _fields_ = [("data", ctypes.c_uint64), ("key", ctypes.c_uint32), ("rw_flags", ctypes.c_int32),
                ("opcode", ctypes.c_uint16), ("reqprio", ctypes.c_int16), ("fildes", ctypes.c_uint32),
                ("buf", ctypes.c_uint64), ("nbytes", ctypes.c_uint64), ("offset", ctypes.c_int64),
                ("reserved2", ctypes.c_uint64), ("flags", ctypes.c_uint32), ("resfd", ctypes.c_uint32)]


class IoEvent(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint64), ("obj", ctypes.c_uint64), ("res", ctypes.c_int64),
                ("res2", ctypes.c_int64)]


class Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


assert ctypes.sizeof(Iocb) == 64 and ctypes.sizeof(IoEvent) == 32
SYS_IO_SETUP, SYS_IO_GETEVENTS, SYS_IO_SUBMIT = 206, 208, 209  # x86_64
IOCB_CMD_PREAD = 0


def aio_reader(dev, plans_json):
    """Child process: keeps one direct read per plan (a list of [offset, length]) in flight,
    each plan's next read submitted as soon as its previous one ends, until stdin closes; then
    waits for the reads in flight and prints every read's [seconds, errno or 0, offset, length]."""
    plans = json.loads(plans_json)
    n = len(plans)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def sys_call(*args):
        r = libc.syscall(*[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return r

    ctx = ctypes.c_ulong(0)  # aio_context_t
    sys_call(SYS_IO_SETUP, n + 8, ctypes.byref(ctx))
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, n * 8192)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    iocbs = (Iocb * n)()
    batch = (ctypes.POINTER(Iocb) * n)()
    events = (IoEvent * n)()
    started = [0.0] * n
    nexts = [0] * n
    results = []

    def submit(slots):
        now = time.monotonic()
        for k, i in enumerate(slots):
            off, length = plans[i][nexts[i] % len(plans[i])]
            nexts[i] += 1
            cb = iocbs[i]
            cb.data, cb.opcode, cb.fildes = i, IOCB_CMD_PREAD, fd
            cb.buf, cb.nbytes, cb.offset = base + i * 8192, length, off
            started[i] = now
            batch[k] = ctypes.pointer(cb)
        done = 0
        while done < len(slots):
            # Partial submissions are resubmitted from the first one not taken.
            done += sys_call(SYS_IO_SUBMIT, ctx, len(slots) - done,
                             ctypes.byref(batch, done * ctypes.sizeof(ctypes.c_void_p)))

    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    submit(list(range(n)))
    inflight = n
    tick = Timespec(0, 200_000_000)
    drain_deadline = None
    while inflight:
        if stop.is_set() and drain_deadline is None:
            drain_deadline = time.monotonic() + 30
        if drain_deadline is not None and time.monotonic() > drain_deadline:
            break  # the parent reports what never ended
        got = sys_call(SYS_IO_GETEVENTS, ctx, 1, n, events, ctypes.byref(tick))
        now = time.monotonic()
        again = []
        for ev in events[:got]:
            i = ev.data
            res = ev.res
            results.append((now - started[i], -res if res < 0 else 0, iocbs[i].offset, iocbs[i].nbytes))
            if stop.is_set():
                inflight -= 1
            else:
                again.append(i)
        if again:
            submit(again)
    print(json.dumps({"results": results, "unfinished": inflight}), flush=True)
    os._exit(0)  # do not wait for reads that never end


def stored_blocks(index_path):
    idx = open(index_path, "rb").read()
    count = struct.unpack_from("<Q", idx, 24)[0]
    shift, dlen = idx[32], {1: 32, 2: 16}[idx[33]]
    e = dlen + 4
    lens = [struct.unpack_from("<I", idx, 64 + i * e + dlen)[0] for i in range(count)]
    return 1 << shift, [i for i in range(count) if lens[i] != 0]


def inflight(dev):
    with open(f"/sys/block/{os.path.basename(dev)}/inflight") as f:
        return int(f.read().split()[0])


def main():
    a_dev, a_index, a_timeout_ms, helper = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    b_dev, b_src, reads = sys.argv[5], sys.argv[6], int(sys.argv[7])
    limit = a_timeout_ms / 1000 + 1.0

    # Reads of A go to stored blocks that the partition scan at attach did not touch.
    bs, stored = stored_blocks(a_index)
    stored = [b for b in stored if 12 <= b < stored[-1] - 4]
    have = set(stored)
    pairs = [b for b in stored if b + 1 in have]
    if len(stored) < 16 or not pairs:
        raise SystemExit("FAIL: A's image has too few stored blocks for this check")
    single = [b * bs + p * 4096 for b in stored for p in range(bs // 4096)]
    random.Random(5).shuffle(single)
    spanning = [(b + 1) * bs - 4096 for b in pairs]
    # Each read its own offsets: 4 KiB ones all distinct; 8 KiB ones across block boundaries.
    plans = []
    for i in range(reads):
        if i % 5 == 0:
            plans.append([(spanning[(i // 5 + k) % len(spanning)], 8192) for k in range(16)])
        else:
            plans.append([(off, 4096) for off in single[i::reads][:16]])

    measure_b(b_dev, b_src, "warm", B_WARM)
    cw0 = measure_b(b_dev, b_src, "random", B_CACHED)
    sw0 = measure_b(b_dev, b_src, "seq", B_SEQ_BEFORE)
    print(f"B before: cached {statistics.median(cw0):.2f} MiB/s, uncached "
          f"{statistics.median(sw0):.2f} MiB/s (medians of {cw0}, {sw0})")

    # Heartbeat: how late a 50 ms sleep wakes up. On a busy host the whole VM stops running
    # now and then (over a second, under TCG); that time is not the driver's and is allowed.
    beat_stop, stall = threading.Event(), [0.0]

    def heartbeat():
        while not beat_stop.is_set():
            t0 = time.monotonic()
            time.sleep(0.05)
            stall[0] = max(stall[0], time.monotonic() - t0 - 0.05)

    threading.Thread(target=heartbeat, daemon=True).start()
    os.kill(helper, signal.SIGSTOP)
    p = None
    try:
        p = run_child(["--aio", a_dev, json.dumps(plans)], subprocess.PIPE)
        # Until (nearly) every read is in the driver; bounded.
        deadline, most = time.monotonic() + 20, 0
        while time.monotonic() < deadline:
            most = max(most, inflight(a_dev))
            if most >= reads - 4:
                break
            time.sleep(0.05)
        print(f"A: {most} reads in flight at once (of {reads})")
        cw1 = measure_b(b_dev, b_src, "random", B_CACHED)
        sw1 = measure_b(b_dev, b_src, "seq", B_SEQ_DURING)
        cached1, seq1 = max(cw1), max(sw1)
        print(f"B while A is frozen: cached {cached1:.2f} MiB/s, uncached {seq1:.2f} MiB/s (best of {cw1}, {sw1})")
        # Stop reading A: the reads in flight end within their timeout.
        p.stdin.close()
        p.stdin = None  # closed: communicate() must not flush it
        out = json.loads(finish_child(p, time.monotonic() + 3 * limit + 40, "reading A"))
    finally:
        beat_stop.set()
        if p is not None and p.poll() is None:
            p.kill()
        os.kill(helper, signal.SIGCONT)
    res, unfinished = out["results"], out["unfinished"]
    cw2 = measure_b(b_dev, b_src, "random", B_CACHED)
    sw2 = measure_b(b_dev, b_src, "seq", B_SEQ_AFTER)
    print(f"B after: cached {statistics.median(cw2):.2f} MiB/s, uncached "
          f"{statistics.median(sw2):.2f} MiB/s (medians of {cw2}, {sw2})")
    # The baseline is the lower of before and after: the host's load drifts.
    cached0 = min(statistics.median(cw0), statistics.median(cw2))
    seq0 = min(statistics.median(sw0), statistics.median(sw2))
    # Stalls of the whole VM under 0.25 s are ordinary scheduling; longer ones are added.
    if stall[0] > 0.25:
        limit += stall[0]
    print(f"VM: the longest stall seen was {stall[0]:.2f} s; each read of A is allowed {limit:.2f} s")

    failures = []
    r_cached, r_seq = cached1 / max(cached0, 1e-9), seq1 / max(seq0, 1e-9)
    print(f"B ratios (best while A frozen / median before or after): cached {r_cached:.2f}, "
          f"uncached {r_seq:.2f} (at least {RATIO})")
    if r_cached < RATIO:
        failures.append(f"B's cached reads fell to {r_cached:.2f} of their reference while A was frozen")
    if r_seq < RATIO:
        failures.append(f"B's uncached reads fell to {r_seq:.2f} of their reference while A was frozen")
    eio = [r for r in res if r[1] == 5]
    other = [r for r in res if r[1] != 5]
    slow = [r for r in res if r[0] > limit]
    worst = max((r[0] for r in res), default=0.0)
    worst_span = max((r[0] for r in res if r[3] == 8192), default=0.0)
    print(f"A: {len(res)} reads, {len(eio)} EIO, slowest {worst:.2f} s (spanning two blocks: "
          f"{worst_span:.2f} s), limit {limit:.1f} s")
    if not res:
        failures.append("no read of A completed")
    if unfinished:
        failures.append(f"{unfinished} reads of A still in flight 30 s after the last was submitted")
    if other:
        r = other[0]
        what = "succeeded" if r[1] == 0 else f"failed with errno {r[1]}"
        failures.append(f"{len(other)} reads of A did not fail with EIO (one at {r[2]}+{r[3]} {what})")
    if slow:
        r = max(slow)
        failures.append(f"{len(slow)} reads of A took over {limit:.1f} s (slowest {r[0]:.2f} s, at {r[2]}+{r[3]})")
    for f in failures:
        print("FAIL:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if sys.argv[1] == "--measure":
        measure(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif sys.argv[1] == "--aio":
        aio_reader(sys.argv[2], sys.argv[3])
    else:
        main()
