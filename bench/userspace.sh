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

echo "== cat over loopback (concurrency $jobs)"
port=18480
"$B" serve "$work/st-lz4" --listen 127.0.0.1:$port 2>/dev/null &
srv=$!
trap 'kill $srv 2>/dev/null' EXIT
sleep 0.5
t_cat=$(secs "$B" cat http://127.0.0.1:$port/usr.hbi --jobs $jobs -o /dev/null)
(cd "$work/st-lz4" && find blocks -type f | sed "s|^|url = http://127.0.0.1:$port/|") >"$work/urls.txt"
stored=$(du -sb "$work/st-lz4/blocks" | cut -f1)
t_curl=$(secs curl -s --parallel --parallel-max $jobs -K "$work/urls.txt" -o /dev/null)
echo "httpblk cat (fetch+verify+decode) ${t_cat} s for $((stored >> 20)) MiB stored"
echo "curl --parallel-max $jobs (fetch only) ${t_curl} s"
echo "ratio cat / curl throughput: $(ratio "$t_curl" "$t_cat")x (goal >= 0.8)"

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
