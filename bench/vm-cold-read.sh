#!/usr/bin/env bash
# VM benchmark (issue: data path): cold sequential read of an ext4 image (codec none; 1 GiB
# unless HTTPBLK_BENCH_MB says otherwise)
# through /dev/httpblk0 from `httpblk serve` over loopback, against nbd + nbdkit's curl plugin
# reading the raw image from the same server. Both run in one VM boot, same conditions.
# Prints MB/s and the ratio; not a test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
st=$(store none)
mkdir -p "$work/raw"
ln -f "$img" "$work/raw/usr.img"

cat >"$out/guest.sh" <<GUEST
exec >"$out/guest.log" 2>&1
cd $out
ip link set lo up
insmod $repo/httpblk.ko
$B serve $st --listen 127.0.0.1:8080 2>/dev/null &
$B serve $work/raw --listen 127.0.0.1:8081 2>/dev/null &
sleep 1
rate() { dd if=\$1 of=/dev/null bs=1M iflag=direct 2>&1 | awk '/copied/ {printf "%.1f MB/s", \$1 / 1e6 / \$(NF-3)}'; }
dev=\$($B attach http://127.0.0.1:8080/usr.hbi)
echo "httpblk: \$(rate \$dev)"
$B detach \$dev
nbdkit -f --exit-with-parent -p 10809 -i 127.0.0.1 curl url=http://127.0.0.1:8081/usr.img 2>nbdkit.err &
# nbdkit takes a while to start under TCG: retry the connection (bounded).
for i in \$(seq 60); do
    nbd-client 127.0.0.1 10809 /dev/nbd0 -b 4096 >/dev/null 2>&1 && break
    sleep 1
done
echo "nbdkit-curl: \$(rate /dev/nbd0)"
nbd-client -d /dev/nbd0 >/dev/null 2>&1
echo done
GUEST
run_guest 3G 3000
h=$(awk '/^httpblk:/ {print $2}' "$out/guest.log")
n=$(awk '/^nbdkit-curl:/ {print $2}' "$out/guest.log")
[ -n "$h" ] && [ -n "$n" ] && echo "ratio httpblk / nbdkit-curl: $(echo "scale=2; $h / $n" | bc)x (goal >= 2)"
