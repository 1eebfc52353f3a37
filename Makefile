# SPDX-License-Identifier: GPL-2.0
# Out-of-tree build of httpblk.ko:  make KDIR=/path/to/linux-6.12-tree [LLVM=-19 ...]
# tests/kernel/build.sh prints a suitable KDIR; tests/lib/toolchain.sh has the make flags.
KDIR ?= /lib/modules/$(shell uname -r)/build

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

.PHONY: modules clean
