# SPDX-License-Identifier: GPL-2.0
# Out-of-tree build of httpblk.ko:  make KDIR=/path/to/linux-tree [LLVM=-19 RUSTC=... ...]
# against a built, Rust-enabled 6.12 or 7.2 tree. tests/kernel/build.sh prints a suitable KDIR;
# tests/lib/toolchain.sh has the make flags.
KDIR ?= /lib/modules/$(shell uname -r)/build
RUSTC ?= rustc

modules: check-kdir
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# One clear line, not a wall of compiler errors, when KDIR or the compiler cannot work.
check-kdir:
	@sh $(CURDIR)/scripts/check-kdir.sh $(KDIR) $(RUSTC)

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

# Installation, like a driver: the module under /lib/modules/$KVER/updates/ (INSTALL_MOD_PATH,
# default DESTDIR) and depmod; the tool with its man pages and completions (userspace/install.sh),
# stripped; the systemd unit and the initramfs-tools hook and boot scripts, under DESTDIR.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= /etc/systemd/system
INITRAMFSDIR ?= /etc/initramfs-tools
INSTALL_MOD_PATH ?= $(DESTDIR)
KVER ?= $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)
DEPMOD ?= depmod
STRIP ?= strip

install: modules_install install-tools

# kbuild runs depmod only when KDIR has a System.map (a distribution's headers have none).
modules_install: modules
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_DIR=updates INSTALL_MOD_PATH=$(INSTALL_MOD_PATH) modules_install
	$(DEPMOD) -a $(if $(INSTALL_MOD_PATH),-b $(INSTALL_MOD_PATH)) $(KVER)

# The binary is stripped (11 MB instead of 75: its line tables are for profiling): the initramfs
# carries it and the root file system's helper runs from a copy in RAM.
install-tools:
	DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) userspace/install.sh
	$(STRIP) $(DESTDIR)$(PREFIX)/bin/httpblk
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(INITRAMFSDIR)/hooks \
		$(DESTDIR)$(INITRAMFSDIR)/scripts/local-top $(DESTDIR)$(INITRAMFSDIR)/scripts/local-bottom
	sed 's|@BINDIR@|$(BINDIR)|' packaging/systemd/httpblk@.service >$(DESTDIR)$(UNITDIR)/httpblk@.service
	sed 's|@BINDIR@|$(BINDIR)|' packaging/initramfs-tools/hooks/httpblk >$(DESTDIR)$(INITRAMFSDIR)/hooks/httpblk
	chmod 0755 $(DESTDIR)$(INITRAMFSDIR)/hooks/httpblk
	install -m 0755 packaging/initramfs-tools/scripts/local-top/httpblk $(DESTDIR)$(INITRAMFSDIR)/scripts/local-top/
	install -m 0755 packaging/initramfs-tools/scripts/local-bottom/httpblk $(DESTDIR)$(INITRAMFSDIR)/scripts/local-bottom/

# Kernel-style checks of the Rust code: rustfmt with the kernel tree's settings, and the
# kernel's clippy build. Both tools must come from the same toolchain as the kernel's rustc.
RUSTFMT ?= rustfmt
CLIPPY_DRIVER ?= clippy-driver

rustfmt:
	$(RUSTFMT) --config-path $(KDIR)/.rustfmt.toml rust/httpblk_main.rs

rustfmtcheck:
	$(RUSTFMT) --check --config-path $(KDIR)/.rustfmt.toml rust/httpblk_main.rs

clippy: check-kdir
	rm -f rust/httpblk_main.o
	$(MAKE) -C $(KDIR) M=$(CURDIR) CLIPPY=1 CLIPPY_DRIVER=$(CLIPPY_DRIVER) modules

.PHONY: modules check-kdir clean install modules_install install-tools rustfmt rustfmtcheck clippy
