#!/usr/bin/env bash
# Userspace benchmark (issue: image format and tools). Prints figures from one run:
#  - create --codec lz4 on an ext4 image of /usr files (1 GiB unless HTTPBLK_BENCH_MB says
#    otherwise) vs gzip -6 and lz4 -1 on the file
#  - create --codec lzo speed
#  - cat from `httpblk serve` over loopback vs curl fetching the same block files with the
#    same concurrency
#  - dedupe ratio of two ext4 images that differ by a few files
# Not a test: it prints ratios, it does not judge them.
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
size=$(stat -c %s "$img")
jobs=32
secs() { local t0=$(date +%s.%N); "$@" >/dev/null 2>&1; echo "$(date +%s.%N) - $t0" | bc; }
mbps() { echo "scale=1; $size / 1000000 / $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

cat "$img" >/dev/null   # warm the page cache: every tool reads from memory
rm -rf "$work/st-lz4" "$work/st-lzo"
t_create=$(secs "$B" create "$img" "$work/st-lz4" --codec lz4 --name usr)
t_lzo=$(secs "$B" create "$img" "$work/st-lzo" --codec lzo --name usr)
t_gzip=$(secs sh -c "gzip -6 -c '$img' >/dev/null")
t_lz4=$(secs sh -c "lz4 -1 -c '$img' >/dev/null")

echo "== create (${mb} MiB ext4 of /usr files, $(nproc) cores)"
echo "httpblk create --codec lz4  ${t_create} s  $(mbps "$t_create") MB/s"
echo "httpblk create --codec lzo  ${t_lzo} s  $(mbps "$t_lzo") MB/s"
echo "gzip -6                     ${t_gzip} s  $(mbps "$t_gzip") MB/s"
echo "lz4 -1                      ${t_lz4} s  $(mbps "$t_lz4") MB/s"
echo "ratio gzip-6 / create-lz4 time: $(ratio "$t_gzip" "$t_create")x (goal >= 3)"
echo "ratio create-lz4 / lz4-1 time:  $(ratio "$t_create" "$t_lz4")x (goal <= 1.5)"

echo "== cat over loopback (concurrency $jobs, best of 3)"
port=18480
"$B" serve "$work/st-lz4" --listen 127.0.0.1:$port 2>/dev/null &
srv=$!
trap 'kill $srv 2>/dev/null' EXIT
sleep 0.5
(cd "$work/st-lz4" && find blocks -type f | sed "s|^|url = http://127.0.0.1:$port/|") >"$work/urls.txt"
stored=$(du -sb "$work/st-lz4/blocks" | cut -f1)
# best3 CMD...: "wall user sys server" of the fastest of three runs (server: CPU seconds the
# server process spent meanwhile).
server_cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' /proc/$srv/stat; }
best3() {
    local best="" run wall user sys s0
    for run in 1 2 3; do
        s0=$(server_cpu)
        read -r wall user sys < <({ TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>&1; } 2>&1)
        if [ -z "$best" ] || [ "$(echo "$wall < ${best%% *}" | bc)" = 1 ]; then
            best="$wall $user $sys $(echo "$(server_cpu) - $s0" | bc)"
        fi
    done
    echo "$best"
}
read -r c_wall c_user c_sys c_srv < <(best3 "$B" cat http://127.0.0.1:$port/usr.hbi --jobs $jobs -o /dev/null)
read -r u_wall u_user u_sys u_srv < <(best3 curl -s --parallel --parallel-max $jobs -K "$work/urls.txt")
read -r l_wall l_user l_sys _ < <(best3 "$B" cat "$work/st-lz4" --jobs $jobs -o /dev/null)
row() { printf '%-44s %6.2f s wall  %5.2f s CPU  server %5.2f s CPU\n' "$1" "$2" "$(echo "$3 + $4" | bc)" "$5"; }
row "httpblk cat (fetch + sha256 + decode)" "$c_wall" "$c_user" "$c_sys" "$c_srv"
row "curl --parallel-max $jobs (fetch only)" "$u_wall" "$u_user" "$u_sys" "$u_srv"
row "httpblk cat of the store dir (no HTTP)" "$l_wall" "$l_user" "$l_sys" 0
echo "$((stored >> 20)) MiB of block files, $((size >> 20)) MiB image; cat delivers $(mbps "$c_wall") MB/s of image"
echo "ratio cat / curl throughput: $(ratio "$u_wall" "$c_wall")x (goal >= 0.8)"
echo "ratio cat over HTTP / cat of the store dir: $(ratio "$l_wall" "$c_wall")x (1.0: HTTP costs nothing)"
kill $srv 2>/dev/null || true

echo "== dedupe of two images differing by a few files"
cp "$img" "$work/usr-b.img"
for i in 1 2 3; do
    debugfs -w -R "write /etc/os-release /extra-$i" "$work/usr-b.img" >/dev/null 2>&1
done
rm -rf "$work/st-fs-pair"
"$B" create "$img" "$work/st-fs-pair" --name a >/dev/null
out=$("$B" create "$work/usr-b.img" "$work/st-fs-pair" --name b)
echo "$out" | grep -E "blocks|bytes"
unique=$(echo "$out" | awk '/^blocks/ {print $4}')
already=$(echo "$out" | awk '/^blocks/ {print $8}')
echo "image b: $already of $unique unique blocks were already stored by image a ($(ratio "$((already * 100))" "$unique")%)"
