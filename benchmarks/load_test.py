"""Load test: many concurrent gradio_client users against the launched app on loopback.

    nice -n 10 python benchmarks/load_test.py [--users 20] [--seconds 60] [--max-requests 6000]
                                              [--score-fraction 0.3] [--model-dir DIR | --url URL]

Each user is a gradio_client.Client in its own thread (spread over a few processes so the load
generator's own GIL is not the bottleneck) that loops: /generate with a random seed, class and
slider value, or (a --score-fraction of the time) /score of one of the example images, until the
time is up or the shared request budget is spent.  Prints requests/s, p50/p95/p99 latency per
endpoint and overall, errors, and the server's resident memory before and after.

Note: the load generator runs on the same machine as the server, so on a 2-core machine both
compete for the CPU; the figures are a lower bound for the server alone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

EXAMPLES = sorted(str(p) for p in (ROOT / "assets" / "examples").glob("*.png"))


def _user(url: str, deadline: float, budget, score_fraction: float, seed: int, out: list) -> None:
    """One simulated user: loop until the deadline or until the shared budget is spent."""
    from gradio_client import Client, handle_file
    rng = random.Random(seed)
    c = Client(url, verbose=False)
    classes = ["random", "T-shirt/top", "Trouser", "Bag", "Sneaker", "Dress"]
    try:
        while time.time() < deadline:
            with budget.get_lock():
                if budget.value <= 0:
                    break
                budget.value -= 1
            op = "score" if rng.random() < score_fraction else "generate"
            t = time.perf_counter()
            try:
                if op == "score":
                    r, _ = c.predict(image=handle_file(rng.choice(EXAMPLES)), api_name="/score")
                    ok = 0.0 <= r["p_real"] <= 1.0
                else:
                    p = c.predict(seed=rng.randrange(10**6), class_name=rng.choice(classes),
                                  truncation=rng.choice([0.7, 1.0]), api_name="/generate")
                    ok = Path(p).stat().st_size > 0
                out.append((op, time.perf_counter() - t, None if ok else "bad result"))
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                out.append((op, time.perf_counter() - t, f"{type(e).__name__}: {str(e)[:120]}"))
    finally:
        c.close()


def _worker(url: str, users: int, deadline: float, budget, score_fraction: float, seed: int, results) -> None:
    """A process running `users` user threads; puts [(op, seconds, error or None)] on the results queue."""
    out: list = []
    threads = [threading.Thread(target=_user, args=(url, deadline, budget, score_fraction, seed * 1000 + i, out))
               for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(out)


def run_load(url: str, *, users: int = 20, seconds: float = 60, max_requests: int = 6000,
             score_fraction: float = 0.3, procs: int | None = None) -> dict:
    """Run the load and return the summary (requests/s, latency percentiles, errors)."""
    procs = max(1, min(procs or min(users, 4), users))
    ctx = mp.get_context("spawn")
    budget = ctx.Value("i", max_requests)
    per = [users // procs + (1 if i < users % procs else 0) for i in range(procs)]
    t0 = time.time()
    deadline = t0 + seconds
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(url, n, deadline, budget, score_fraction, i, results))
               for i, n in enumerate(per)]
    for w in workers:
        w.start()
    parts = [results.get() for _ in workers]  # before join: a full queue would block the workers
    for w in workers:
        w.join()
    wall = time.time() - t0
    rows = [r for part in parts for r in part]
    return summarise(rows, wall, users)


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))] if s else float("nan")


def summarise(rows: list, wall: float, users: int) -> dict:
    """Aggregate (op, seconds, error) rows."""
    out: dict = {"users": users, "wall_s": round(wall, 1), "requests": len(rows),
                 "errors": sum(1 for r in rows if r[2]), "requests_per_s": round(len(rows) / wall, 2)}
    for name, sel in (("all", rows), ("generate", [r for r in rows if r[0] == "generate"]),
                      ("score", [r for r in rows if r[0] == "score"])):
        lat = [1000 * r[1] for r in sel if not r[2]]
        out[name] = {"n": len(sel), "p50_ms": round(_pct(lat, 50), 1), "p95_ms": round(_pct(lat, 95), 1),
                     "p99_ms": round(_pct(lat, 99), 1), "max_ms": round(max(lat), 1) if lat else None}
    errs = sorted({r[2] for r in rows if r[2]})
    out["error_kinds"] = errs[:5]
    return out


def main(argv: list[str] | None = None) -> int:
    """Launch the app (unless --url), run the load, print the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-requests", type=int, default=6000, help="bound on the total number of requests")
    ap.add_argument("--score-fraction", type=float, default=0.3)
    ap.add_argument("--procs", type=int, default=None, help="load-generator processes (default: min(users, 4))")
    ap.add_argument("--model-dir", default=None, help="model folder for the launched app (default: its own choice)")
    ap.add_argument("--url", default=None, help="load an already running app instead of launching one")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    server = None
    if args.url:
        url = args.url.rstrip("/") + "/"
    else:
        from app_server import start_app
        server = start_app(args.model_dir, log=Path(tempfile.gettempdir()) / "load_test_server.log")
        url = server.url
    try:
        from gradio_client import Client
        c = Client(url, verbose=False)  # warm-up: first image, first score (lazy imports, classifier)
        c.predict(seed=0, api_name="/generate")
        from gradio_client import handle_file
        c.predict(image=handle_file(EXAMPLES[0]), api_name="/score")
        c.close()
        rss0 = server.rss_mb() if server else None
        cpu0 = server.cpu_seconds() if server else None
        res = run_load(url, users=args.users, seconds=args.seconds, max_requests=args.max_requests,
                       score_fraction=args.score_fraction, procs=args.procs)
        res["rss_mb_before"] = round(rss0, 1) if rss0 else None
        res["rss_mb_after"] = round(server.rss_mb(), 1) if server else None
        if server and res["requests"]:
            res["server_cpu_ms_per_request"] = round(1000 * (server.cpu_seconds() - cpu0) / res["requests"], 1)
        res["concurrency_limit"] = int(os.environ.get("GAN_APP_CONCURRENCY", "4"))
        res["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if server:
            server.stop()
    print(f"{res['users']} users for {res['wall_s']} s: {res['requests']} requests, {res['requests_per_s']} req/s, "
          f"{res['errors']} errors")
    for name in ("all", "generate", "score"):
        r = res[name]
        print(f"  {name:>8}: n={r['n']:5d}  p50 {r['p50_ms']} ms  p95 {r['p95_ms']} ms  p99 {r['p99_ms']} ms  "
              f"max {r['max_ms']} ms")
    if res["error_kinds"]:
        print("  errors: " + " | ".join(res["error_kinds"]))
    if "server_cpu_ms_per_request" in res:
        print(f"  server CPU time per request: {res['server_cpu_ms_per_request']} ms (the rest of the machine's CPU "
              f"went to the load generator and other processes)")
    print(f"  server RSS: {res['rss_mb_before']} MiB before, {res['rss_mb_after']} MiB after; "
          f"queue concurrency limit {res['concurrency_limit']}; load average after {res['load_average_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0 if res["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
