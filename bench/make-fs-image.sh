#!/usr/bin/env bash
# make-fs-image.sh OUT SIZE_MB: an ext4 image of SIZE_MB filled with real files from /usr
# (their blocks take 85% of it, less 8 MiB for the journal and inode tables), built without
# mounting (mkfs.ext4 -d) and renamed into place when complete. Reused when it exists.
set -euo pipefail
out=$1 size_mb=$2
[ -f "$out" ] && exit 0
stage=$(mktemp -d)
trap 'rm -rf "$stage" "$out.tmp"' EXIT
budget=$((size_mb * 1024 * 1024 * 85 / 100 - 8 * 1024 * 1024))
python3 - "$stage" "$budget" <<'PY'
import os, shutil, sys
stage, budget = sys.argv[1], int(sys.argv[2])
used = 0
for root in ["/usr/lib", "/usr/share", "/usr/bin", "/usr/include"]:
    for d, _, files in os.walk(root):
        for f in sorted(files):
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            n = (os.path.getsize(p) + 4095) // 4096 * 4096  # in 4 KiB blocks
            if used + n > budget:
                continue
            dst = stage + p
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(p, dst)
            used += n
print(f"staged {used >> 20} MiB of /usr", file=sys.stderr)
PY
mkfs.ext4 -q -F -b 4096 -d "$stage" "$out.tmp" "${size_mb}M"
mv "$out.tmp" "$out"
