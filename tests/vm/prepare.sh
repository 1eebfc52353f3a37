#!/usr/bin/env bash
# Host side: makes the test images and stores the VM suite reads, into $1 (a scratch folder).
#   raw.img    24 MiB: random data, zero runs and repeated blocks (dedupe)
#   ext4.img / erofs.img  filesystems holding a copy of /usr/share/perl, with a manifest
#   st/        store: raw (codec none), ext4, erofs; md5/64K variant of raw as raw-md5
#   st-CODEC/  ext4.img compressed with CODEC (lzo, lz4, zstd, zlib); st-lz4-corrupt: one
#              compressed block's payload damaged, header intact
#   golden/CODEC/NAME.hbi  one-block images carrying the golden vectors verbatim
#   st-alias/  short.img (1 MiB + 7 sectors, 256 KiB blocks: a short last block) and
#              small64k.img (1 MiB, 64 KiB blocks), codec none, plus crafted copies of short.hbi
#              whose block 0 names short.img's short last block (short-alias-short.hbi) or
#              small64k.img's block 0 (short-alias-64k.hbi)
#   st-md5x/, st-md5y/  md5x.img / md5y.img (64 KiB, 4 KiB md5 blocks) whose blocks 0 differ
#              but have the same MD5 (a real collision)
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

# Crafted indexes and an MD5 collision (t_hostile.sh). Small, in their own stores.
python3 - <<'PY'
import hashlib, random
random.seed(11)
open("short.img", "wb").write(random.randbytes(1024 * 1024 + 7 * 512))
open("small64k.img", "wb").write(random.randbytes(1024 * 1024))
# The MD5 collision of Wang, Feng, Lai and Yu (2004): two 128-byte messages, as published on
# Peter Selinger's page https://www.mscs.dal.ca/~selinger/md5collision/ . MD5 is
# Merkle-Damgard, so equal suffixes keep the collision: two different 4 KiB blocks, one MD5.
m1 = bytes.fromhex(
    "d131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f89"
    "55ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5b"
    "d8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70")
m2 = bytes.fromhex(
    "d131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f89"
    "55ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5b"
    "d8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70")
pad = random.randbytes(4096 - 128)
x, y = m1 + pad, m2 + pad
assert x != y and hashlib.md5(x).digest() == hashlib.md5(y).digest(), "not an MD5 collision"
open("md5x.img", "wb").write(x + random.randbytes(60 * 1024))
open("md5y.img", "wb").write(y + random.randbytes(60 * 1024))
PY
"$B" create short.img st-alias --codec none >/dev/null
"$B" create small64k.img st-alias --codec none --block-size 65536 >/dev/null
"$B" create md5x.img st-md5x --codec none --hash md5 --block-size 4096 >/dev/null
"$B" create md5y.img st-md5y --codec none --hash md5 --block-size 4096 >/dev/null
python3 - st-alias <<'PY'
import struct, sys
st = sys.argv[1]

def entries(name):
    idx = open(f"{st}/{name}.hbi", "rb").read()
    count, dlen = struct.unpack_from("<Q", idx, 24)[0], {1: 32, 2: 16}[idx[33]]
    assert len(idx) == 64 + count * (dlen + 4)
    return idx, [idx[64 + i * (dlen + 4):64 + (i + 1) * (dlen + 4)] for i in range(count)]

short, short_entries = entries("short")
_, small_entries = entries("small64k")
stored_len = lambda e: struct.unpack_from("<I", e, len(e) - 4)[0]
# Codec none: a block file is the 16-byte header and the block.
assert stored_len(short_entries[-1]) == 16 + 7 * 512 and stored_len(small_entries[0]) == 16 + 65536
for name, entry in (("short-alias-short", short_entries[-1]), ("short-alias-64k", small_entries[0])):
    crafted = bytearray(short)
    crafted[64:64 + len(entry)] = entry  # block 0 names a shorter block's digest and length
    open(f"{st}/{name}.hbi", "wb").write(crafted)
PY
sha256sum raw.img ext4.img erofs.img >images.sha256
touch .prepared
