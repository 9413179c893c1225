"""What machine a number was measured on: one description for training records, benchmarks and cards."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware_description(device: torch.device, world: int = 1) -> str:
    """Human-readable hardware string: GPU name(s), or processes, CPU model, cores and torch threads."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return f"{world} x {name}" if world > 1 else name
    return (f"{world} process(es) on CPU: {cpu_name()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} threads")
