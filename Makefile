# Forwards to the kernel build system, as for any out-of-tree module:
#   make KDIR=/path/to/built/kernel [modules|modules_install|clean]
# ci/module.sh passes the toolchain the kernel was built with.
KDIR ?= /lib/modules/$(shell uname -r)/build

modules modules_install clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $@

.PHONY: modules modules_install clean
