#!/usr/bin/env bash
# VM benchmark (issue: one HTTP layer): cold sequential read of /dev/httpblk0 over HTTPS
# against over plain HTTP, the whole 24 MiB raw test image (codec none: every byte crosses
# TLS), from one nginx inside the VM; HTTPS with HTTP/2 and with HTTP/1.1; two rounds. Runs
# the VM suite's test_bench_https_cold_read (tests/vm/t_http.sh), which the normal suite
# skips. Prints seconds per read and the throughput ratios. Goal: HTTPS >= 0.8x of HTTP.
# Under TCG every AES instruction is emulated, so the ratio there is far below native.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
log=$(mktemp)
HTTPBLK_TESTS=test_bench_https_cold_read bash "$repo/tests/vm/run.sh" >"$log" 2>&1 || true
out=$(grep -o '/tmp/httpblk-vm\.[A-Za-z0-9]*' "$log" | head -1)
grep -E '^(PASS|FAIL|SKIP) test_bench' "$log" || { tail -20 "$log"; exit 1; }
grep -E '^vm: booting' "$log"
figs=$(grep -o 'figure .*' "$out/logs/test_bench_https_cold_read.log")
echo "$figs"
secs() { echo "$figs" | grep "round=$1 mode=$2 " | sed 's/.*secs=//'; }
for round in 1 2; do
    h=$(secs "$round" http)
    echo "round $round: HTTPS/HTTP throughput, HTTP/2: $(echo "scale=2; $h / $(secs "$round" https-h2)" | bc)x, HTTP/1.1: $(echo "scale=2; $h / $(secs "$round" https-h1)" | bc)x (goal >= 0.8)"
done
