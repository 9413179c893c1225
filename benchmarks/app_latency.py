"""Slider-to-image latency of the app, against its own no-op round trip, in the same run.

    nice -n 10 python benchmarks/app_latency.py [--model-dir DIR] [--n 100] [--requests 1000] [--no-browser]

Measures, on a freshly launched `python app.py` on loopback:
* app start to first image: from spawning the process until /generate has returned the first image;
* through gradio_client: /generate with a moved slider (a new image each time, downloaded by the client)
  vs the hidden /noop endpoint (returns its input), interleaved so both see the same machine load;
* in a real browser (Playwright + Debian chromium): moving a direction slider until the new image has
  loaded and decoded, vs the page calling /noop through Gradio's own queue protocol (POST queue/join,
  then the event stream until process_completed: the requests the page makes for an event), interleaved;
* resident memory of the server before and after --requests /generate calls.
The goal (issue 5): slider-to-image within 10% of the no-op round trip.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from app_server import CHROMIUM, CHROMIUM_ARGS, start_app  # noqa: E402

SLIDER_JS = """
async ({slider, target, value}) => {
  const input = document.querySelector(`#${slider} input[type=range]`);
  const box = document.querySelector(`#${target}`);
  const before = box.querySelector('img') ? box.querySelector('img').src : null;
  return await new Promise((resolve) => {
    const t0 = performance.now();
    const obs = new MutationObserver(async () => {
      const img = box.querySelector('img');
      if (img && img.src && img.src !== before) {
        obs.disconnect();
        const t1 = performance.now();
        try { await img.decode(); } catch (e) {}
        resolve([t1 - t0, performance.now() - t0]);
      }
    });
    obs.observe(box, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
    input.value = String(value);
    input.dispatchEvent(new Event('input', {bubbles: true}));
  });
}
"""
NOOP_JS = """
async ({fn, value}) => {
  const session = Math.random().toString(36).slice(2);
  const t0 = performance.now();
  const join = await fetch('gradio_api/queue/join', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({data: [value], fn_index: fn, session_hash: session, event_data: null, trigger_id: null})});
  await join.json();
  const reader = (await fetch(`gradio_api/queue/data?session_hash=${session}`)).body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (true) {
    const {value: chunk, done} = await reader.read();
    if (done) throw new Error('event stream closed before process_completed: ' + text.slice(-200));
    text += decoder.decode(chunk);
    if (text.includes('process_completed')) { reader.cancel(); return performance.now() - t0; }
  }
}
"""


def stats(xs: list[float]) -> dict:
    """median / p10 / p90 / mean in ms."""
    s = sorted(xs)
    q = lambda p: s[min(len(s) - 1, int(p * len(s)))]  # noqa: E731
    return {"n": len(s), "median_ms": round(statistics.median(s), 2), "p10_ms": round(q(0.1), 2),
            "p90_ms": round(q(0.9), 2), "mean_ms": round(statistics.fmean(s), 2)}


def client_latency(url: str, n: int, direction: str | None) -> dict[str, dict]:
    """/noop vs /generate with a moved slider, through gradio_client, interleaved.

    /generate is timed twice: without downloading the PNG (the same single round trip as /noop plus
    our work) and with the download the API returns a file for (one more HTTP request).
    """
    from gradio_client import Client
    c = Client(url, verbose=False)
    c_nodl = Client(url, verbose=False, download_files=False)
    out: dict[str, list[float]] = {"noop": [], "generate_no_download": [], "generate": []}
    for i in range(n + 10):
        sliders = {direction: round(-3 + 6 * (i % 61) / 60, 2)} if direction else {}
        trunc = 1.0 if direction else 0.5 + (i % 50) / 100
        times = {}
        t = time.perf_counter()
        c.predict(float(i), api_name="/noop")
        times["noop"] = time.perf_counter() - t
        t = time.perf_counter()
        c_nodl.predict(seed=1000 + i, sliders=sliders, truncation=trunc, api_name="/generate")
        times["generate_no_download"] = time.perf_counter() - t
        t = time.perf_counter()
        c.predict(seed=2000 + i, sliders=sliders, truncation=trunc, api_name="/generate")
        times["generate"] = time.perf_counter() - t
        if i >= 10:  # warm-up
            for k, v in times.items():
                out[k].append(1000 * v)
    c.close()
    c_nodl.close()
    return {k: stats(v) for k, v in out.items()}


def browser_latency(url: str, n: int, slider_id: str) -> dict[str, dict]:
    """Slider -> new image (in the page, and decoded) vs a /noop event from the page, interleaved."""
    from playwright.sync_api import sync_playwright
    out: dict[str, list[float]] = {"noop": [], "image_in_page": [], "image_decoded": []}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#gen-image img", timeout=60000)
        noop = _fn_index(url, "noop")
        for i in range(n + 5):
            v = round(-3 + 6 * ((i % 59) + 1) / 60, 1)
            o = page.evaluate(NOOP_JS, {"fn": noop, "value": float(i)})
            in_page, decoded = page.evaluate(SLIDER_JS, {"slider": slider_id, "target": "gen-image", "value": v})
            if i >= 5:
                out["noop"].append(o)
                out["image_in_page"].append(in_page)
                out["image_decoded"].append(decoded)
        b.close()
    return {k: stats(v) for k, v in out.items()}


def _fn_index(url: str, api_name: str) -> int:
    """Index of the app's event with this api_name (from the page's /config), as the page's events use."""
    import urllib.request
    with urllib.request.urlopen(url + "config", timeout=30) as r:
        deps = json.load(r)["dependencies"]
    return next(d["id"] for d in deps if d.get("api_name") == api_name)


def generate_load(url: str, n: int) -> float:
    """n sequential /generate requests (different seeds); returns seconds."""
    from gradio_client import Client
    c = Client(url, verbose=False)
    t = time.perf_counter()
    for i in range(n):
        c.predict(seed=i, api_name="/generate")
    c.close()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a report (and JSON with --json)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", default=None, help="model folder (default: the app's own choice, checkpoints/)")
    ap.add_argument("--n", type=int, default=100, help="measurements per series")
    ap.add_argument("--requests", type=int, default=1000, help="/generate calls before the second RSS reading")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    from gradio_client import Client
    log = Path(tempfile.gettempdir()) / "app_latency_server.log"
    t0 = time.perf_counter()
    server = start_app(args.model_dir, log=log)
    try:
        c = Client(server.url, verbose=False)
        c.predict(seed=0, api_name="/generate")
        first_image_s = time.perf_counter() - t0
        info = c.view_api(print_info=False, return_format="dict")
        c.close()
        direction = _first_direction(args.model_dir)
        res: dict = {"machine": _machine(), "model_dir": args.model_dir or "(app default)",
                     "server_ready_s": round(server.started_s, 2), "start_to_first_image_s": round(first_image_s, 2),
                     "direction": direction, "endpoints": sorted(info.get("named_endpoints", {}))}
        rss0 = server.rss_mb()
        res["client"] = client_latency(server.url, args.n, direction)
        if not args.no_browser:
            res["browser"] = browser_latency(server.url, args.n, "dir-0" if direction else "truncation")
        rss1 = server.rss_mb()
        dt = generate_load(server.url, args.requests)
        res["rss_mb"] = {"after_start": round(rss0, 1), "after_latency_runs": round(rss1, 1),
                         f"after_{args.requests}_more_generate": round(server.rss_mb(), 1)}
        res["sequential_generate_per_s"] = round(args.requests / dt, 1)
    finally:
        server.stop()
    _report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


def _first_direction(model_dir: str | None) -> str | None:
    """Name of the first latent direction of the model the app serves (None if it has none)."""
    from gan.latent import load_directions
    from gan.hub import source_from_env
    folder = Path(model_dir) if model_dir else source_from_env().folder
    d = load_directions(folder)
    return d.names[0] if d is not None and len(d) else None


def _machine() -> str:
    from gan.hardware import cpu_name
    load = os.getloadavg()
    return (f"{cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {load[0]:.2f} at start (shared machine)")


def _report(r: dict) -> None:
    print(f"machine: {r['machine']}")
    print(f"app start: page ready {r['server_ready_s']} s, first image {r['start_to_first_image_s']} s")
    series = [("gradio_client", "client", [("generate_no_download", "/generate, PNG not downloaded"),
                                           ("generate", "/generate + PNG download")]),
              ("browser", "browser", [("image_in_page", "slider -> new image in the page"),
                                      ("image_decoded", "slider -> new image decoded")])]
    for title, key, rows in series:
        if key not in r:
            continue
        noop = r[key]["noop"]
        print(f"{title}: no-op round trip median {noop['median_ms']:.1f} ms (p10 {noop['p10_ms']:.1f}, "
              f"p90 {noop['p90_ms']:.1f}), n={noop['n']}")
        for k, label in rows:
            x = r[key][k]
            over = 100 * (x["median_ms"] / noop["median_ms"] - 1)
            print(f"  {label:>34}: median {x['median_ms']:.1f} ms (p90 {x['p90_ms']:.1f}), "
                  f"{over:+.0f}% vs no-op ({'within' if over <= 10 else 'outside'} the 10% goal)")
    print("RSS (MiB): " + ", ".join(f"{k} {v}" for k, v in r["rss_mb"].items()))
    print(f"sequential /generate throughput: {r['sequential_generate_per_s']} requests/s")


if __name__ == "__main__":
    sys.exit(main())
