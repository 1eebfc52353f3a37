#!/usr/bin/env bash
# Prints the kernel argument that mounts a virtme-ng guest's root (the host's /, over 9p,
# read-only) with the guest's page and metadata cache on: virtme-ng's own mount has none, so
# every exec and every file a guest opens crossed 9p each time (under TCG a third of the time
# of a command as small as /bin/true). Appended after virtme-ng's own `rootflags=`, it wins.
# Only for guests whose root nothing changes while they run (the tests and benchmarks).
echo "rootflags=version=9p2000.L,trans=virtio,access=any,msize=524288,cache=loose"
