"""Host RAM available for new work, for the memory checks made before a run (ComfyUI-free)."""
from __future__ import annotations

import os

#: Assumed where the platform reports nothing (a modest machine).
UNKNOWN_RAM = 8 * 1024**3


def available_ram() -> int:
    """Bytes of RAM available now: the kernel's ``MemAvailable``, which counts the page cache it
    can drop. ``MemFree`` alone (``SC_AVPHYS_PAGES``) is small on any machine that has read big
    files lately — after reading 20 GB of video it said 1.2 GiB of 24 free — and is used only
    where ``/proc/meminfo`` does not exist."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return UNKNOWN_RAM
