"""Describe the machine and software a benchmark ran on."""

import importlib.metadata
import os
import platform

PACKAGES = ("bottle", "cheroot", "numpy", "pillow", "ai-edge-litert")


def describe():
    """Return (item, value) pairs: cores, CPU model, Python, packages."""
    pairs = [("cores", str(os.cpu_count())),
             ("CPU", _cpu_model()),
             ("kernel", platform.release()),
             ("Python", platform.python_version())]
    for name in PACKAGES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        pairs.append((name, version))
    return pairs


def _cpu_model():
    """Return the CPU model name from /proc/cpuinfo, if there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def busy_cpu_seconds():
    """Return CPU seconds the whole machine has spent busy since boot.

    Steal time counts as busy: the hypervisor gave that time to another
    machine, so it was not available to the benchmark either.
    """
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    user, nice, system, _, _, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    """Return CPU seconds used by this process and its reaped children."""
    times = os.times()
    return (times.user + times.system + times.children_user
            + times.children_system)
