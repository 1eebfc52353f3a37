#!/usr/bin/env bash
# Runs one VM benchmark on each test kernel, one after the other, and prints the two reports
# side by side: a line both print alike once, a line that differs once per kernel, and under
# it each figure (MB/s, IOPS, CPU-s, bytes, ratios) of the first kernel over the second's,
# marked when the two differ by more than 10% (a difference to explain, see issue 19).
#   bench/kernels.sh bench/vm-cache.sh        HTTPBLK_BENCH_KERNELS="7.2 6.12" (default)
# The benchmark's own variables (HTTPBLK_BENCH_MB, ...) pass through. Each kernel's full
# report is kept in /tmp/httpblk-kernels.*/KERNEL.txt. Not a test.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BENCH [ARGS...]" >&2; exit 2; }
kernels=(${HTTPBLK_BENCH_KERNELS:-7.2 6.12})
[ "${#kernels[@]}" = 2 ] || { echo "HTTPBLK_BENCH_KERNELS: two kernels" >&2; exit 2; }
out=$(mktemp -d /tmp/httpblk-kernels.XXXXXX)
for k in "${kernels[@]}"; do
    echo "== $1 on $k (report in $out/$k.txt)"
    HTTPBLK_KERNEL=$k bash "$@" >"$out/$k.txt" 2>&1 || echo "   (it exited with status $?)"
done
python3 - "$out/${kernels[0]}.txt" "$out/${kernels[1]}.txt" "${kernels[@]}" <<'PY'
import re, sys
a_path, b_path, ka, kb = sys.argv[1:5]
def report(path):
    """The report from its first "host load" line on: what comes before is the benchmark
    making its images, which only the first run does."""
    lines = open(path).read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("host load")), 0)
    return lines[start:]
a = report(a_path)
b = report(b_path)
# A figure: a number and what it counts. Idle shares and loads are context, not compared.
FIG = re.compile(r"(-?\d+(?:\.\d+)?)\s*(MB/s|IOPS|CPU-s|bytes|x\b)")
w = max(len(ka), len(kb))
if len(a) != len(b):
    print(f"the reports have {len(a)} and {len(b)} lines: shown whole")
    for k, lines in ((ka, a), (kb, b)):
        print(f"-- {k}")
        print("\n".join(lines))
    sys.exit(0)
big = 0
for la, lb in zip(a, b):
    if la == lb:
        print(la)
        continue
    print(f"{ka:>{w}} | {la}")
    print(f"{kb:>{w}} | {lb}")
    fa, fb = FIG.findall(la), FIG.findall(lb)
    if len(fa) != len(fb) or not fa or la.startswith("host load"):
        continue
    parts = []
    for (va, ua), (vb, ub) in zip(fa, fb):
        va, vb = float(va), float(vb)
        if ua != ub or vb == 0:
            continue
        q = va / vb
        mark = " <-- over 10%" if abs(q - 1) > 0.10 else ""
        big += bool(mark)
        parts.append(f"{ua} {q:.2f}{mark}")
    if parts:
        print(f"{'':>{w}} | {ka}/{kb}: " + ", ".join(parts))
print(f"figures differing by more than 10% between {ka} and {kb}: {big}")
PY
