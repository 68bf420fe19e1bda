#!/bin/sh
# What this container may see and do: one "key value" line each, for the security tests.
# Runs in the busybox image (sh builtins and busybox only); /t/probe, when mounted, is the
# static syscall prober built from probe.c.
for n in cgroup ipc mnt net pid user uts; do echo "ns.$n $(readlink /proc/self/ns/$n)"; done
# The shell's own credentials (builtins: an exec'd cat would show its own)
while read -r k v; do
  case $k in CapInh:|CapPrm:|CapEff:|CapBnd:|CapAmb:|NoNewPrivs:|Seccomp:) echo "${k%:} $v";; esac
done < /proc/self/status
read -r inside outside count < /proc/self/uid_map; echo "uid_map $inside:$outside:$count"
# masked paths read as nothing (/dev/null or an empty tmpfs)
for p in /proc/keys /proc/timer_list /proc/sched_debug /sys/firmware; do
  if [ ! -e "$p" ]; then echo "path.$p absent"; continue; fi
  if [ -d "$p" ]; then n=$(ls -A "$p" 2>/dev/null | wc -l); else n=$(head -c 1 "$p" 2>/dev/null | wc -c); fi
  [ "$n" -gt 0 ] && echo "path.$p visible" || echo "path.$p masked"
done
# /proc/sys: an IPC-namespaced sysctl written with its own value (harmless wherever it lands)
v=$(cat /proc/sys/kernel/shm_rmid_forced)
if (echo "$v" > /proc/sys/kernel/shm_rmid_forced) 2>/dev/null; then echo "procsys writable"; else echo "procsys read-only"; fi
# mount flags of / , /sys and /proc/sys (mountinfo field 5: the mount point, 6: its options)
while read -r id parent dev root point opts rest; do
  case $point in /|/sys|/proc/sys) echo "mount.$point ${opts%%,*}";; esac
done < /proc/self/mountinfo
# devices: is a host block device here?
n=0; for d in /dev/*; do [ -b "$d" ] && n=$((n+1)); done; echo "blockdevs $n"
if [ -x /t/probe ]; then /t/probe keyctl mount bpf clone3 personality_query unshare_user | sed 's/=/ /'; fi
exit 0
