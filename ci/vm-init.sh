#!/bin/busybox sh
# /init of the test VM: mounts, then runs the tests, the demo or a user's program.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t debugfs debugfs /sys/kernel/debug
export PATH=/bin:/sbin:/tests
echo "UKSM-VM-BOOTED $(uname -r) $(cut -d' ' -f1 /proc/uptime)s"
mode=$(cat /mode)
case $mode in
  tests) /tests/run-all.sh ;;
  demo|bench) echo UKSM-OUTPUT-BEGIN; /tests/$mode.sh $(cat /tests/selected 2>/dev/null) 2>&1; echo UKSM-OUTPUT-END ;;
  run)
    echo UKSM-OUTPUT-BEGIN
    modprobe uksm && echo "uksm loaded"
    set -- $(cat /extra/command)
    chmod +x "$1"; "$@" 2>&1; echo "exit status $?"
    rmmod uksm && echo "uksm unloaded"
    dmesg | grep uksm
    echo UKSM-OUTPUT-END ;;
esac
echo "UKSM-TAINT $(cat /proc/sys/kernel/tainted)"
echo UKSM-VM-DONE
reboot -f
