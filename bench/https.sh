#!/usr/bin/env bash
# HTTPS benchmark (issue: one HTTP layer). Prints figures from one run, best of 3 each:
#  - `httpblk cat` over HTTPS against `curl --parallel --parallel-max N` over HTTPS fetching
#    the same block files with the same concurrency (HTTP/2 for both, then HTTP/1.1 for both)
#  - `cat` over HTTP/2 against over HTTP/1.1 (same nginx, same TLS)
#  - `cat` over plain HTTP from the same nginx, for the cost of TLS
#  - with HTTPBLK_BENCH_AWSLC=DIR (a build with --features aws-lc-rs in DIR/release/httpblk):
#    the same cat with the aws-lc-rs crypto provider, and both binaries' sizes
# nginx serves from the page cache with one worker (master_process off); a throw-away CA made
# here with openssl. Not a test: it prints ratios, it does not judge them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
(cd "$repo/userspace" && cargo build -q --release)
B=$repo/userspace/target/release/httpblk
work=${HTTPBLK_BENCH_DIR:-$HOME/.cache/httpblk/bench}
mkdir -p "$work"
mb=${HTTPBLK_BENCH_MB:-1024}
img=$work/usr-${mb}m.img
bash "$here/make-fs-image.sh" "$img" "$mb"
st=$work/st-$mb-lz4
[ -f "$st/usr.hbi" ] || "$B" create "$img" "$st" --codec lz4 --name usr >/dev/null
size=$(stat -c %s "$img")
stored=$(du -sb "$st/blocks" | cut -f1)
jobs=${HTTPBLK_BENCH_JOBS:-32}
tmp=$(mktemp -d /tmp/httpblk-https.XXXXXX)
d=$tmp

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/ca.key" \
    -out "$d/ca.pem" -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/srv.key" \
    -out "$d/srv.csr" -subj "/CN=bench server" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$d/srv.ext"
openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial 2 -days 2 \
    -extfile "$d/srv.ext" -out "$d/srv.pem" 2>/dev/null

p2=18443; p1=18444; ph=18480
cat >"$d/nginx.conf" <<CONF
daemon off; master_process off; pid $d/nginx.pid; error_log $d/error.log;
events { worker_connections 4096; }
http {
    access_log off; keepalive_requests 1000000; sendfile on;
    client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
    uwsgi_temp_path $d; scgi_temp_path $d;
    http2_max_concurrent_streams 256;
    ssl_certificate $d/srv.pem; ssl_certificate_key $d/srv.key;
    server { listen 127.0.0.1:$p2 ssl http2; root $st; }
    server { listen 127.0.0.1:$p1 ssl; root $st; }
    server { listen 127.0.0.1:$ph; root $st; }
}
CONF
nginx -e "$d/error.log" -c "$d/nginx.conf" &
srv=$!
trap 'kill $srv 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$ph/" && break; sleep 0.1; done
cat "$st"/blocks/*/* >/dev/null  # nginx reads from memory
(cd "$st" && find blocks -type f | sed "s|^|url = https://127.0.0.1:$p2/|") >"$d/urls2.txt"
(cd "$st" && find blocks -type f | sed "s|^|url = https://127.0.0.1:$p1/|") >"$d/urls1.txt"

server_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' /proc/$srv/stat; }
# best3 CMD...: "wall cpu server" of the fastest of three runs (HTTPBLK_BENCH_RUNS), after one
# that must succeed (a failing command would look fast).
best3() {
    local best="" run wall user sys s0
    "$@" >/dev/null 2>"$d/err" || { echo "bench: $* failed: $(tail -3 "$d/err")" >&2; exit 1; }
    for run in $(seq "${HTTPBLK_BENCH_RUNS:-3}"); do
        s0=$(server_cpu)
        read -r wall user sys < <({ TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>&1)
        if [ -z "$best" ] || [ "$(echo "$wall < ${best%% *}" | bc)" = 1 ]; then
            best="$wall $(echo "$user + $sys" | bc) $(echo "$(server_cpu) - $s0" | bc)"
        fi
    done
    echo "$best"
}
row() { printf '%-52s %6.2f s wall  %5.2f s CPU  nginx %5.2f s CPU  %6.1f MB/s of files\n' \
    "$1" "$2" "$3" "$4" "$(echo "scale=1; $stored / 1000000 / $2" | bc)"; }
ratio() { echo "scale=2; $1 / $2" | bc; }
ca=(--ca-cert "$d/ca.pem")

echo "== cat over HTTPS vs curl over HTTPS ($((stored >> 20)) MiB of block files, $((size >> 20)) MiB image, concurrency $jobs, $(nproc) cores, best of ${HTTPBLK_BENCH_RUNS:-3})"
read -r c2 c2c c2s < <(best3 "$B" cat "https://127.0.0.1:$p2/usr.hbi" "${ca[@]}" --jobs "$jobs" -o /dev/null)
read -r u2 u2c u2s < <(best3 curl -sf --cacert "$d/ca.pem" --parallel --parallel-max "$jobs" -K "$d/urls2.txt" -o /dev/null)
read -r c1 c1c c1s < <(best3 "$B" cat "https://127.0.0.1:$p2/usr.hbi" "${ca[@]}" --http1 --jobs "$jobs" -o /dev/null)
read -r u1 u1c u1s < <(best3 curl -sf --http1.1 --cacert "$d/ca.pem" --parallel --parallel-max "$jobs" -K "$d/urls1.txt" -o /dev/null)
read -r ch chc chs < <(best3 "$B" cat "http://127.0.0.1:$ph/usr.hbi" --jobs "$jobs" -o /dev/null)
row "httpblk cat, HTTPS, HTTP/2 (fetch+sha256+decode)" "$c2" "$c2c" "$c2s"
row "curl --parallel, HTTPS, HTTP/2 (fetch only)" "$u2" "$u2c" "$u2s"
row "httpblk cat, HTTPS, HTTP/1.1" "$c1" "$c1c" "$c1s"
row "curl --parallel --http1.1, HTTPS" "$u1" "$u1c" "$u1s"
row "httpblk cat, plain HTTP/1.1" "$ch" "$chc" "$chs"
echo "ratio cat / curl throughput over HTTPS, HTTP/2:   $(ratio "$u2" "$c2")x"
echo "ratio cat / curl throughput over HTTPS, HTTP/1.1: $(ratio "$u1" "$c1")x"
echo "ratio cat HTTP/2 / HTTP/1.1 throughput:           $(ratio "$c1" "$c2")x"
echo "ratio cat HTTPS / plain HTTP throughput:          $(ratio "$ch" "$c2")x"
if [ -n "${HTTPBLK_BENCH_AWSLC:-}" ]; then
    A=$HTTPBLK_BENCH_AWSLC/release/httpblk
    read -r a2 a2c a2s < <(best3 "$A" cat "https://127.0.0.1:$p2/usr.hbi" "${ca[@]}" --jobs "$jobs" -o /dev/null)
    read -r a1 a1c a1s < <(best3 "$A" cat "https://127.0.0.1:$p2/usr.hbi" "${ca[@]}" --http1 --jobs "$jobs" -o /dev/null)
    echo "== crypto provider"
    row "cat, HTTP/2, aws-lc-rs" "$a2" "$a2c" "$a2s"
    row "cat, HTTP/1.1, aws-lc-rs" "$a1" "$a1c" "$a1s"
    echo "binary size: ring $(stat -c %s "$B") bytes, aws-lc-rs $(stat -c %s "$A") bytes (with line tables)"
    strip -o "$d/ring.stripped" "$B"
    strip -o "$d/awslc.stripped" "$A"
    echo "stripped:    ring $(stat -c %s "$d/ring.stripped") bytes, aws-lc-rs $(stat -c %s "$d/awslc.stripped") bytes"
fi
