"""Run app.py in a subprocess on a free loopback port (used by the app tests and benchmarks/)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tiny_model(folder: str | Path, *, seed: int = 0, directions: bool = True) -> Path:
    """A tiny conditional GAN folder (random weights) with two unit directions, for fast app tests."""
    from gan import GAN
    torch.manual_seed(seed)
    model = GAN(generator={"width": 8, "num_classes": 10}, discriminator={"width": 8, "num_classes": 10},
                class_names=FASHION)
    folder = Path(folder)
    model.save_pretrained(folder)
    if directions:
        from gan.latent import Directions, save_directions
        v = torch.randn(2, model.z_dim)
        v = v / v.norm(dim=1, keepdim=True)
        save_directions(Directions(["PC1", "brightness"], v, ["PC1: test", "brightness: test"],
                                   ["first test direction", "second test direction"], ["pca", "attribute"]), folder)
    return folder


@dataclass
class AppServer:
    """A launched app: its process, URL and log file."""

    proc: subprocess.Popen
    url: str
    log: Path
    started_s: float  # seconds from spawn until the page answered
    model_dir: Path | None = None  # GAN_MODEL_DIR it serves (None: the app's default)
    scratch: Path | None = None  # GAN_APP_SCRATCH it writes output files into (None: the default)

    def rss_mb(self) -> float:
        """Resident memory of the server process in MiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop the server (SIGINT, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_app(model_dir: str | Path | None, *, log: str | Path, env: dict | None = None, timeout: float = 120,
              nice: int = 0) -> AppServer:
    """Spawn `python app.py` on a free port and wait until its page answers."""
    port = free_port()
    e = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
         "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    if model_dir is not None:
        e["GAN_MODEL_DIR"] = str(model_dir)
    log = Path(log)
    cmd = [sys.executable, str(ROOT / "app.py")]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=e, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=2) as r:
                if r.status == 200:
                    scratch = e.get("GAN_APP_SCRATCH")
                    return AppServer(proc, url, log, time.perf_counter() - t0,
                                     Path(model_dir) if model_dir is not None else None,
                                     Path(scratch) if scratch else None)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"app did not answer within {timeout}s:\n{log.read_text()[-3000:]}")
