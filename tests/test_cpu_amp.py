"""bf16 autocast on the CPU: on by default where the CPU computes bf16 natively, forced by --cpu-amp / --no-cpu-amp.

The CPU's flags are faked by pointing gan.hardware at a cpuinfo file of the test's own, so the rule is checked
both ways on any machine; the runs go through train.py's main() and read back training_options.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import gan.hardware
from gan.hardware import cpu_flags, native_bf16, use_cpu_amp

from conftest import run_main, tensors, tiny_args

SAPPHIRE_RAPIDS = "fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8"
AVX512_BF16_ONLY = "fpu sse2 avx2 avx512f avx512_bf16"
NO_BF16 = "fpu sse2 avx2 avx512f avx512_vnni"  # e.g. Skylake/Cascade Lake server: bf16 would be emulated


def fake_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: str) -> None:
    """Make gan.hardware read a two-core /proc/cpuinfo with these flags."""
    info = tmp_path / f"cpuinfo-{abs(hash(flags))}"
    core = f"processor\t: {{}}\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n"
    info.write_text(core.format(0) + core.format(1))
    monkeypatch.setattr(gan.hardware, "CPUINFO", info)


def train_tiny(fake_fashion: Path, out: Path, *extra: str) -> tuple[bool, dict[str, torch.Tensor]]:
    """Two steps through train.py's main(): (cpu_amp as training_options.json records it, D's weights)."""
    assert run_main(tiny_args(fake_fashion, out, *extra, steps=2)) == 0
    used = json.loads((out / "training_options.json").read_text())["cpu_amp"]
    return used, tensors(out / "discriminator.safetensors")


@pytest.mark.parametrize(("flags", "native"), [(SAPPHIRE_RAPIDS, True), (AVX512_BF16_ONLY, True), (NO_BF16, False)])
def test_native_bf16_reads_the_cpu_flags(flags: str, native: bool, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cpu(monkeypatch, tmp_path, flags)
    assert cpu_flags() == frozenset(flags.split())
    assert native_bf16() is native
    cpu = torch.device("cpu")
    assert use_cpu_amp(None, cpu) is native  # auto follows the flags
    assert use_cpu_amp(True, cpu) is True and use_cpu_amp(False, cpu) is False  # forced either way
    assert use_cpu_amp(None, torch.device("cuda")) is False and use_cpu_amp(True, torch.device("cuda")) is False


def test_no_cpuinfo_means_no_native_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gan.hardware, "CPUINFO", tmp_path / "absent")  # macOS, Windows: no /proc/cpuinfo
    assert cpu_flags() == frozenset() and native_bf16() is False
    assert use_cpu_amp(None, torch.device("cpu")) is False


def test_training_defaults_to_bf16_only_where_the_cpu_has_it_and_the_flags_win(
        fake_fashion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        fake_cpu(m, tmp_path, SAPPHIRE_RAPIDS)
        auto_native, d_auto_native = train_tiny(fake_fashion, tmp_path / "auto-native")
        forced_off, d_forced_off = train_tiny(fake_fashion, tmp_path / "no-cpu-amp", "--no-cpu-amp")
    with monkeypatch.context() as m:
        fake_cpu(m, tmp_path, NO_BF16)
        auto_emulated, d_auto_emulated = train_tiny(fake_fashion, tmp_path / "auto-emulated")
        forced_on, d_forced_on = train_tiny(fake_fashion, tmp_path / "cpu-amp", "--cpu-amp")

    # what each run recorded is what it used
    assert (auto_native, forced_off, auto_emulated, forced_on) == (True, False, False, True)
    # and what it used shows in the weights: the auto runs match the forced runs of the same precision
    for a, b in ((d_auto_native, d_forced_on), (d_auto_emulated, d_forced_off)):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(d_auto_native[k], d_auto_emulated[k]) for k in d_auto_native), \
        "bf16 autocast changed nothing"


def test_cpu_amp_must_be_a_bool_or_auto() -> None:
    from gan.train import TrainConfig, TrainingError
    with pytest.raises(TrainingError, match="--cpu-amp must be true, false or None"):
        TrainConfig(cpu_amp="yes")  # type: ignore[arg-type]
    assert TrainConfig().cpu_amp is None
