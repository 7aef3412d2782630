"""The machine a benchmark runs on: CPU, cores, memory, versions and its load."""

import os
import pathlib
import platform

import numpy as np


def load_average():
    """The 1, 5 and 15-minute load averages (runnable processes, all cores)."""
    return [round(x, 2) for x in os.getloadavg()]


def machine():
    """Describe the machine: CPU model, cores, memory, OS and library versions."""
    from companion import environment

    info = environment.describe()
    cpu = platform.processor() or platform.machine()
    flags = set()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    memory = None
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    info.update({
        "cpu": cpu,
        "simd": [f for f in ("avx2", "avx512f", "fma") if f in flags],
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": memory,
        "os": platform.platform(),
        "numpy": np.__version__,
    })
    return info
