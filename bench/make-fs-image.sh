#!/usr/bin/env bash
# make-fs-image.sh OUT SIZE_MB: an ext4 image of SIZE_MB filled with real files from /usr
# (about 85% full), built without mounting (mkfs.ext4 -d). Reused when it already exists.
set -euo pipefail
out=$1 size_mb=$2
[ -f "$out" ] && exit 0
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
budget=$((size_mb * 1024 * 1024 * 85 / 100))
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
            n = os.path.getsize(p)
            if used + n > budget:
                continue
            dst = stage + p
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(p, dst)
            used += n
print(f"staged {used >> 20} MiB of /usr", file=sys.stderr)
PY
mkfs.ext4 -q -F -b 4096 -d "$stage" "$out" "${size_mb}M"
