# SPDX-License-Identifier: GPL-2.0
# Out-of-tree build of httpblk.ko:  make KDIR=/path/to/linux-6.12-tree [LLVM=-19 ...]
# tests/kernel/build.sh prints a suitable KDIR; tests/lib/toolchain.sh has the make flags.
KDIR ?= /lib/modules/$(shell uname -r)/build

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

# Installation, like a driver: the module under /lib/modules/$KVER/updates/ (honouring
# INSTALL_MOD_PATH; kbuild runs depmod), the tool and the systemd unit under DESTDIR/PREFIX.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= /etc/systemd/system

install: modules_install install-tools

modules_install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_DIR=updates modules_install

install-tools:
	cd userspace && cargo build --release --bin httpblk
	install -D -m 0755 userspace/target/release/httpblk $(DESTDIR)$(BINDIR)/httpblk
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@BINDIR@|$(BINDIR)|' packaging/systemd/httpblk@.service >$(DESTDIR)$(UNITDIR)/httpblk@.service
	if [ -x userspace/install.sh ]; then DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) userspace/install.sh; fi

# Kernel-style checks of the Rust code: rustfmt with the kernel tree's settings, and the
# kernel's clippy build. Both tools must come from the same toolchain as the kernel's rustc.
RUSTFMT ?= rustfmt
CLIPPY_DRIVER ?= clippy-driver

rustfmt:
	$(RUSTFMT) --config-path $(KDIR)/.rustfmt.toml rust/httpblk_main.rs

rustfmtcheck:
	$(RUSTFMT) --check --config-path $(KDIR)/.rustfmt.toml rust/httpblk_main.rs

clippy:
	rm -f rust/httpblk_main.o
	$(MAKE) -C $(KDIR) M=$(CURDIR) CLIPPY=1 CLIPPY_DRIVER=$(CLIPPY_DRIVER) modules

.PHONY: modules clean install modules_install install-tools rustfmt rustfmtcheck clippy
