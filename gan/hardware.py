"""What machine a number was measured on (one description for training records, benchmarks and cards), and
what the CPU computes natively: the one home of the rule that turns bf16 autocast on the CPU on or off."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")
# CPU flags (Linux /proc/cpuinfo names) of native bf16 arithmetic: Intel AMX (Sapphire Rapids on) and AVX512-BF16
# (Cooper Lake, Sapphire Rapids, AMD Zen 4 on). Elsewhere PyTorch emulates bf16 and autocast makes a CPU slower.
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        for line in CPUINFO.read_text().splitlines():
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


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS or Windows)."""
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX-BF16 or AVX512-BF16 among its flags)."""
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)


def use_cpu_amp(requested: bool | None, device: torch.device) -> bool:
    """bf16 autocast for a run on device: never off the CPU; as forced (True/False); None (auto): native_bf16()."""
    if device.type != "cpu":
        return False
    return native_bf16() if requested is None else bool(requested)
