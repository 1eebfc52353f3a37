#!/usr/bin/env bash
# Host side: makes the test images and stores the VM suite reads, into $1 (a scratch folder).
#   raw.img    24 MiB: random data, zero runs and repeated blocks (dedupe)
#   ext4.img / erofs.img  filesystems holding a copy of /usr/share/perl, with a manifest
#   st/        store: raw (codec none), ext4, erofs; md5/64K variant of raw as raw-md5
#   st-CODEC/  ext4.img compressed with CODEC (lzo, lz4, zstd, zlib); st-lz4-corrupt: one
#              compressed block's payload damaged, header intact
#   golden/CODEC/NAME.hbi  one-block images carrying the golden vectors verbatim
set -euo pipefail
out=$1
B=${HTTPBLK_BIN:?}
mkdir -p "$out"
cd "$out"
[ -f .prepared ] && exit 0
# A run that stopped halfway left damaged stores behind: start over.
find . -mindepth 1 -delete

python3 - <<'PY'
import os, random
random.seed(7)
chunk = 256 * 1024
rand = lambda n: random.randbytes(n)
a, b = rand(chunk), rand(chunk)
parts = [rand(4 * chunk), bytes(3 * chunk), a, b, a, a, rand(chunk // 2), bytes(chunk // 2)]
data = b"".join(parts)
data += rand(24 * 1024 * 1024 - len(data) - 7 * 512) + bytes(7 * 512)  # short, odd tail
open("raw.img", "wb").write(data)
PY

mkdir -p fs-src
cp -a /usr/share/perl fs-src/
(cd fs-src && find . -type f -print0 | sort -z | xargs -0 sha256sum) >manifest.sha256
mkfs.ext4 -q -F -b 4096 -d fs-src -L httpblk ext4.img 48M >/dev/null
mkfs.erofs --quiet erofs.img fs-src >/dev/null

"$B" create raw.img st --codec none >/dev/null
"$B" create raw.img st --codec none --hash md5 --block-size 65536 --name raw-md5 >/dev/null
"$B" create ext4.img st --codec none >/dev/null
"$B" create erofs.img st --codec none --block-size 131072 >/dev/null
# Bad stores for raw.img: block 0's file corrupted (st-corrupt) or too long (st-long).
first_block() { od -An -tx1 -j64 -N32 "$1/raw.hbi" | tr -d ' \n'; }
for bad in st-corrupt st-long; do
    "$B" create raw.img $bad --codec none >/dev/null
    name=$(first_block $bad)
    f=$bad/blocks/${name:0:2}/$name
    if [ $bad = st-corrupt ]; then
        printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc 2>/dev/null
    else
        head -c 1000 /dev/urandom >>"$f"
    fi
done
for codec in lzo lz4 zstd zlib; do
    "$B" create ext4.img st-$codec --codec $codec >/dev/null
done
"$B" create ext4.img st-lz4-corrupt --codec lz4 >/dev/null
python3 - st-lz4-corrupt <<'PY'
import os, struct, sys
st = sys.argv[1]
idx = open(f"{st}/ext4.hbi", "rb").read()
count, dlen = struct.unpack_from("<Q", idx, 24)[0], 32
for i in range(count):
    e = idx[64 + i * (dlen + 4):64 + (i + 1) * (dlen + 4)]
    if struct.unpack_from("<I", e, dlen)[0] == 0:
        continue
    name = e[:dlen].hex()
    path = f"{st}/blocks/{name[:2]}/{name}"
    b = bytearray(open(path, "rb").read())
    if b[5] == 0:  # stored raw: look for a compressed one
        continue
    mid = 16 + (len(b) - 16) // 2
    b[mid:mid + 8] = bytes(x ^ 0x5A for x in b[mid:mid + 8])
    open(path, "wb").write(b)
    open(f"{st}/corrupt-block", "w").write(str(i))
    break
PY
[ -s st-lz4-corrupt/corrupt-block ]
"$HTTPBLK_GOLDEN_STORE" "$(dirname "$0")/../golden" golden >/dev/null
sha256sum raw.img ext4.img erofs.img >images.sha256
touch .prepared
