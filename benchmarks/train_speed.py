"""Training throughput (images/s) of our loop against a textbook PyTorch DCGAN loop with the same G and D.

    python benchmarks/train_speed.py                       # CPU (and the GPU when there is one), widths 64 and 32
    python benchmarks/train_speed.py --threads 1 --rounds 5 --width 32 --reg-every 2 4 16

Ours: ``gan.train.train`` with the data set as one uint8 tensor in (device) memory and train.py's defaults
(class-conditional G + projection D, spectral norm, DiffAugment translation, EMA of G, R3GAN's RpGAN objective
with R1 and R2 run lazily every ``--reg-every`` steps, real and generated images in one pass through D, and on
the CPU bf16 autocast where the CPU computes bf16 natively, as ``gan.hardware.use_cpu_amp`` decides for
train.py), and variants: R1/R2 on every step (``--reg-every 1``, the recipe before lazy regularisation), the
hinge loss (no penalty), and the other CPU precision (``--no-cpu-amp`` where the default is bf16, else
``--cpu-amp``).  Every loop runs at each ``--width`` (default: train.py's G and D width, then 32).
Textbook: the loop of pytorch/examples' dcgan/main.py -- a ``DataLoader`` (shuffle, batch 64, 2 workers) over a
torchvision-style data set that turns each uint8 image into a PIL image and applies ``ToTensor`` + ``Normalize``
per item, BCE loss, Adam, no EMA and no augmentation -- driving the *same* G and D modules, so the model cost is
equal and the difference is the loop and the data path (ours even does more work per step: EMA + augmentation).

Each measurement runs ``--warmup`` steps first (not timed) and then ``--steps`` timed steps; the loops take
turns for ``--rounds`` rounds, so a busy machine slows each of them alike, and the table shows the medians
and their ratio to the textbook loop.  Never imports gradio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan.data import DataError, ImageData, load_dataset  # noqa: E402
from gan.hardware import NATIVE_BF16_FLAGS, cpu_flags, cpu_name, use_cpu_amp  # noqa: E402
from gan.losses import LOSSES  # noqa: E402
from gan.models import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig  # noqa: E402
from gan.train import TrainConfig, train  # noqa: E402


def benchmark_data(n: int) -> ImageData:
    """The first n Fashion-MNIST training images, or random images of the same shape if the data is absent."""
    try:
        return load_dataset("fashion-mnist", download=False).subset(n)
    except DataError:
        g = torch.Generator().manual_seed(0)
        return ImageData(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                         torch.arange(n) % 10, [str(i) for i in range(10)], "random")


def ours(data: ImageData, device: str, batch: int, steps: int, warmup: int, width: int,
         loss: str = TrainConfig.loss, **options: object) -> float:
    """Images/s of gan.train.train over `steps` timed steps (after `warmup`), read from its metrics.jsonl."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(out=str(Path(tmp) / "run"), device=device, batch_size=batch, steps=warmup + steps,
                          limit=len(data), g_width=width, d_width=width, eval_every=0, log_every=warmup,
                          sample_every=10**9, ckpt_every=10**9, seed=0, loss=loss, **options)
        assert steps % warmup == 0, "--steps must be a multiple of --warmup (one metrics row per warm-up length)"
        train(cfg, data=data, progress=False)
        rows = [json.loads(line) for line in (Path(cfg.out) / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if "img_per_s" in r and r["step"] > warmup]
    images = batch * warmup * len(timed)
    seconds = sum(batch * warmup / r["img_per_s"] for r in timed)
    return images / seconds


class TextbookFashionMNIST(torch.utils.data.Dataset):
    """What torchvision.datasets.FashionMNIST does per item: uint8 array -> PIL image -> transform."""

    def __init__(self, data: ImageData, transform) -> None:  # noqa: ANN001
        self.images, self.labels, self.transform = data.images[:, 0].numpy(), data.labels.tolist(), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i], mode="L")), self.labels[i]


def textbook(data: ImageData, device: str, batch: int, steps: int, warmup: int, width: int, workers: int) -> float:
    """Images/s of the pytorch/examples DCGAN loop (DataLoader + per-item transforms) with our G and D."""
    import torchvision.transforms as transforms
    torch.manual_seed(0)
    dev = torch.device(device)
    n_cls = 10
    netG = Generator(GeneratorConfig(z_dim=64, width=width, num_classes=n_cls)).to(dev)
    netD = Discriminator(DiscriminatorConfig(width=width, num_classes=n_cls)).to(dev)
    dataset = TextbookFashionMNIST(data, transforms.Compose([transforms.ToTensor(),
                                                             transforms.Normalize((0.5,), (0.5,))]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers,
                                         drop_last=True, persistent_workers=workers > 0)
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = F.binary_cross_entropy_with_logits  # == Sigmoid + BCELoss of the original, numerically safer
    done, t0 = 0, None
    while done < warmup + steps:
        for real_cpu, y in loader:
            if done == warmup:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            if done == warmup + steps:
                break
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            netD.zero_grad()
            real, y = real_cpu.to(dev), y.to(dev)
            b = real.size(0)
            label = torch.full((b,), 1.0, device=dev)
            output = netD(real, y)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = torch.sigmoid(output).mean().item()
            noise = torch.randn(b, 64, device=dev)
            fake = netG(noise, y)
            label.fill_(0.0)
            output = netD(fake.detach(), y)
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = torch.sigmoid(output).mean().item()
            optD.step()
            # (2) Update G network: maximize log(D(G(z)))
            netG.zero_grad()
            label.fill_(1.0)
            output = netD(fake, y)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = torch.sigmoid(output).mean().item()
            optG.step()
            done += 1
            del D_x, D_G_z1, D_G_z2, errD_real, errD_fake, errG
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def recipes(a: argparse.Namespace, device: str) -> dict[str, dict]:
    """The loops measured in each round: the textbook loop, then ours with train.py's defaults and variants."""
    out: dict[str, dict] = {"textbook (DataLoader, batch 64)": {"textbook": True}}
    k = TrainConfig.reg_every
    bf16 = use_cpu_amp(TrainConfig.cpu_amp, torch.device(device))  # what train.py's default does on this device
    precision = f"; bf16 autocast {'on' if bf16 else 'off'}: auto" if device == "cpu" else ""
    for loss in dict.fromkeys(a.losses):
        if loss == TrainConfig.loss:
            out[f"ours, train.py defaults (R1/R2 every {k} steps{precision})"] = {"loss": loss}
            out["ours, train.py defaults but --reg-every 1 (R1/R2 every step)"] = {"loss": loss, "reg_every": 1}
        else:
            out[f"ours, --loss {loss}"] = {"loss": loss}
    for every in a.reg_every:
        out[f"ours, train.py defaults but --reg-every {every}"] = {"reg_every": every}
    if a.cpu_amp and device == "cpu":
        flag = "--no-cpu-amp (fp32)" if bf16 else "--cpu-amp (bf16 autocast)"
        out[f"ours, train.py defaults but {flag}"] = {"cpu_amp": not bf16}
    return out


def measure(a: argparse.Namespace, data: ImageData, device: str, bs: int, width: int) -> dict[str, list[float]]:
    """Images/s of every recipe, --rounds times, interleaved so that each sees the same machine load."""
    steps = a.gpu_steps if device.startswith("cuda") else a.steps
    runs = recipes(a, device)
    res: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(a.rounds):
        for name, opts in runs.items():
            if opts.get("textbook"):
                ips = textbook(data, device, 64, steps, a.warmup, width, a.workers)
            else:
                ips = ours(data, device, bs, steps, a.warmup, width, **opts)
            res[name].append(ips)
            print(f"[{device}, width {width}, round {r + 1}] {name}, batch {64 if opts.get('textbook') else bs}: "
                  f"{ips:,.0f} img/s (load {os.getloadavg()[0]:.1f})", flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[TrainConfig.batch_size],
                   help="batch sizes of our loop (default: train.py's)")
    p.add_argument("--gpu-batch-sizes", nargs="+", type=int, default=[64, 512, 2048, 8192])
    p.add_argument("--steps", type=int, default=40, help="timed steps per measurement (a multiple of --warmup)")
    p.add_argument("--gpu-steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=TrainConfig.reg_every,
                   help="untimed steps first, also the length of each timed block (default: --reg-every's "
                        "default, so that every block holds one R1/R2 step)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table shows the median")
    p.add_argument("--width", nargs="+", type=int, default=[TrainConfig.g_width, 32],
                   help="G and D widths, each measured in full (default: train.py's, then 32)")
    p.add_argument("--losses", nargs="+", default=[TrainConfig.loss, "hinge"], choices=LOSSES,
                   help="objectives of our loop (R1/R2 as train.py sets them for each)")
    p.add_argument("--reg-every", nargs="*", type=int, default=[], help="also measure these --reg-every values")
    p.add_argument("--cpu-amp", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure the CPU precision train.py's default does not use (--no-cpu-amp where "
                        "bf16 is native, else --cpu-amp)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the textbook loop")
    p.add_argument("--images", type=int, default=20000, help="training images held in memory")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    devices = a.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    data = benchmark_data(a.images)
    native = [f for f in NATIVE_BF16_FLAGS if f in cpu_flags()]
    print(f"torch {torch.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs "
          f"({cpu_name()}; native bf16 flags: {', '.join(native) or 'none'}), {torch.get_num_threads()} torch "
          f"threads, load average before {os.getloadavg()[0]:.1f}; data: {len(data)} images from {data.source}")
    results = []
    for device in devices:
        gpu = device.startswith("cuda")
        for width in dict.fromkeys(a.width):
            for bs in (a.gpu_batch_sizes if gpu else a.batch_sizes):
                for name, vals in measure(a, data, device, bs, width).items():
                    results.append({"device": device, "width": width, "loop": name,
                                    "batch": 64 if name.startswith("textbook") else bs,
                                    "img_per_s": statistics.median(vals), "rounds": [round(v, 1) for v in vals]})
    print(f"\nmedian of {a.rounds} interleaved rounds; load average after {os.getloadavg()[0]:.1f}")
    print("| device | width | loop | batch | images/s | vs textbook |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for r in results:
        base = next(b["img_per_s"] for b in results if (b["device"], b["width"]) == (r["device"], r["width"])
                    and b["loop"].startswith("textbook"))
        print(f"| {r['device']} | {r['width']} | {r['loop']} | {r['batch']} | {r['img_per_s']:,.0f} | "
              f"{r['img_per_s'] / base:.2f}x |")
    assert "gradio" not in sys.modules, "the training benchmark must not import gradio"
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
