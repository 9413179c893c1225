"""Serving load: N concurrent clients for T seconds against the app's REST API, with light async clients.

    nice -n 10 python benchmarks/serve_load.py                         # launches app.py on the shipped model
    python benchmarks/serve_load.py --sweep-batch 1 4 16 64            # /generate's max_batch_size, measured
    python benchmarks/serve_load.py --clients 100 --seconds 30 --url http://127.0.0.1:7860/ --pid 1234

Each client is an asyncio task (one process, httpx) that loops until the time is up, calling an endpoint the
way any HTTP client can (Gradio 6's REST protocol): ``POST /gradio_api/call/<api>`` with ``{"data": [...]}``
returns an event id, then ``GET /gradio_api/call/<api>/<event_id>`` streams the result; a request counts as
done when the image file it names has been downloaded too (what a user needs). /score uploads its example
image first (``POST /gradio_api/upload``), as a fresh client must.  Scenarios, each in the same run:

* ``generate``: every client calls /generate (random seed, class and truncation);
* ``mix``: a --score-fraction of the calls are /score, the rest /generate;
* ``single``: one client, /generate (until its answer, and with its image downloaded) and the app's no-op
  endpoint (/noop: the same queue and HTTP path, no work) interleaved, so the ratio of their medians is the
  cost of the work itself.

Plain REST calls carry no session, so each is a new Gradio session: setting one up (a copy of the config of all
the page's components, about 11 ms of CPU for this app's 257) is most of what a no-op costs the server.
``--sessions`` gives each client one session for all its calls, as gradio_client and the browser page do.

Reports requests/s, p50/p99 latency, errors (by kind) and the server's resident memory after each scenario and
its peak (VmHWM) when the server's process is known.  The load generator shares the machine's CPUs with the
server, so on a 2-core machine the figures are a lower bound for the server alone; its own CPU time is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

EXAMPLE = sorted((ROOT / "assets" / "examples").glob("*.png"))
CLASSES = ["random", "T-shirt/top", "Trouser", "Bag", "Sneaker", "Dress"]


@dataclass
class Tally:
    """Per-endpoint latencies (s) and errors of one scenario."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, op: str, seconds: float, error: str | None) -> None:
        if error:
            self.errors[error] = self.errors.get(error, 0) + 1
            self.latencies.setdefault(op, [])
        else:
            self.latencies.setdefault(op, []).append(seconds)


async def call(http, url: str, api: str, data: list, *, download: bool = True,  # noqa: ANN001 (httpx.AsyncClient)
               session: str | None = None):
    """One REST call: POST the inputs, read the event stream to its end, download a returned file; the outputs.

    session: a session hash sent with the call (what gradio_client and the page do: one per client); without one,
    every call is a new Gradio session, whose set-up costs the server more than the no-op itself."""
    body = {"data": data} if session is None else {"data": data, "session_hash": session}
    r = await http.post(f"{url}gradio_api/call/{api}", json=body)
    if r.status_code != 200:
        raise RuntimeError(f"POST {api}: HTTP {r.status_code}")
    event_id = r.json()["event_id"]
    event, payload = None, None
    async with http.stream("GET", f"{url}gradio_api/call/{api}/{event_id}") as s:
        async for line in s.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line[5:].strip()
                break
    if event != "complete":
        raise RuntimeError(f"{api}: {event} {str(payload)[:80]}")
    out = json.loads(payload)
    if download:
        for item in out:
            if isinstance(item, dict) and item.get("url"):
                f = await http.get(item["url"])
                if f.status_code != 200 or not f.content:
                    raise RuntimeError(f"{api}: file download HTTP {f.status_code}")
    return out


async def upload(http, url: str, path: Path) -> dict:  # noqa: ANN001
    """Upload one file; its FileData payload for an endpoint's image parameter."""
    r = await http.post(f"{url}gradio_api/upload", files={"files": (path.name, path.read_bytes(), "image/png")})
    r.raise_for_status()
    server_path = r.json()[0]
    return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


async def one_request(http, url: str, op: str, rng: random.Random,  # noqa: ANN001
                      session: str | None = None) -> None:
    """One user action: /generate with random inputs (generate-answer: without the file download), /score of an
    example image, or the no-op."""
    if op in ("generate", "generate-answer"):
        await call(http, url, "generate", [rng.randrange(10**6), rng.choice(CLASSES), rng.choice([0.7, 1.0]), {}],
                   download=op == "generate", session=session)
    elif op == "score":
        img = await upload(http, url, rng.choice(EXAMPLE))
        out = await call(http, url, "score", [img], session=session)
        if not 0.0 <= out[0]["p_real"] <= 1.0:
            raise RuntimeError("score: p_real out of range")
    else:
        out = await call(http, url, "noop", [1.5], session=session)
        if out != [1.5]:
            raise RuntimeError(f"noop returned {out}")


async def _client(http, url: str, deadline: float, score_fraction: float, seed: int,  # noqa: ANN001
                  tally: Tally, sessions: bool = False) -> None:
    """One client: requests back to back until the deadline, each timed and counted (sessions: in one session)."""
    rng = random.Random(seed)
    session = f"load{seed:08x}" if sessions else None
    while time.perf_counter() < deadline:
        op = "score" if rng.random() < score_fraction else "generate"
        t = time.perf_counter()
        try:
            await one_request(http, url, op, rng, session)
            tally.add(op, time.perf_counter() - t, None)
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported by kind
            tally.add(op, time.perf_counter() - t, f"{op}: {type(e).__name__}: {str(e)[:100]}")


async def run_clients(url: str, clients: int, seconds: float, score_fraction: float = 0.0, seed: int = 0,
                      sessions: bool = False) -> dict:
    """`clients` concurrent clients for `seconds`; the scenario's summary (sessions: each client keeps one)."""
    import httpx
    # idle connections expire before the server's keep-alive timeout (uvicorn: 5 s), so that a client never
    # reuses one the server is closing at that moment (a race every HTTP client must avoid)
    limits = httpx.Limits(max_connections=clients * 2 + 4, max_keepalive_connections=clients * 2 + 4,
                          keepalive_expiry=2.0)
    tally = Tally()
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as http:
        t0 = time.perf_counter()
        deadline = t0 + seconds
        await asyncio.gather(*[_client(http, url, deadline, score_fraction, seed * 10_000 + i, tally, sessions)
                               for i in range(clients)])
        wall = time.perf_counter() - t0
    return summarise(tally, wall, clients)


def run_load(url: str, *, clients: int = 20, seconds: float = 30, score_fraction: float = 0.3) -> dict:
    """Synchronous entry point: run the clients against url and return the summary."""
    return asyncio.run(run_clients(url.rstrip("/") + "/", clients, seconds, score_fraction))


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))] if s else float("nan")


def summarise(tally: Tally, wall: float, clients: int) -> dict:
    """Requests/s, p50/p99 (ms) per endpoint and overall, errors by kind."""
    done = sum(len(v) for v in tally.latencies.values())
    errors = sum(tally.errors.values())
    out: dict = {"clients": clients, "wall_s": round(wall, 1), "requests": done + errors, "ok": done,
                 "errors": errors, "requests_per_s": round(done / wall, 1), "error_kinds": dict(tally.errors)}
    every = [x for v in tally.latencies.values() for x in v]
    for name, lat in [("all", every), *tally.latencies.items()]:
        ms = [1000 * x for x in lat]
        out[name] = {"n": len(ms), "req_per_s": round(len(ms) / wall, 1), "p50_ms": round(_pct(ms, 50), 1),
                     "p99_ms": round(_pct(ms, 99), 1)}
    return out


async def single_user(url: str, n: int, sessions: bool = False) -> dict:
    """One client, /generate and /noop interleaved n times each: medians and their ratio (sessions: in one)."""
    import httpx
    rng = random.Random(1)
    session = "single-user" if sessions else None
    lat: dict[str, list[float]] = {"generate": [], "generate-answer": [], "noop": []}
    async with httpx.AsyncClient(timeout=60.0) as http:
        for _ in range(5):  # warm the connection and both paths
            await one_request(http, url, "generate", rng, session)
            await one_request(http, url, "noop", rng, session)
        for i in range(n):
            ops = list(lat)
            for op in ops[i % 3:] + ops[:i % 3]:  # each op first, second and third in turn
                t = time.perf_counter()
                await one_request(http, url, op, rng, session)
                lat[op].append(time.perf_counter() - t)
    med = {op: 1000 * statistics.median(v) for op, v in lat.items()}
    return {"n": n, "generate_p50_ms": round(med["generate"], 2), "noop_p50_ms": round(med["noop"], 2),
            "generate_answer_p50_ms": round(med["generate-answer"], 2),
            "ratio": round(med["generate"] / med["noop"], 3),
            "answer_ratio": round(med["generate-answer"] / med["noop"], 3)}


def _memory(pid: int | None) -> dict:
    """Resident memory now and at its peak (MiB) of a process, from /proc."""
    if pid is None:
        return {}
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = round(int(val.split()[0]) / 1024, 1)
    return out


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process has used so far."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sweep_batch(model_dir: str, sizes: list[int], clients: int, seconds: float) -> list[dict]:
    """The generate scenario on a freshly launched app per /generate max_batch_size (GAN_APP_GENERATE_BATCH)."""
    from app_server import start_app
    rows = []
    for size in sizes:
        server = start_app(model_dir, log=Path(tempfile.gettempdir()) / "serve_load_sweep.log",
                           env={"GAN_APP_GENERATE_BATCH": str(size)})
        try:
            asyncio.run(call_once(server.url))
            s0 = _cpu_seconds(server.proc.pid)
            r = asyncio.run(run_clients(server.url, clients, seconds))
            r["server_cpu_ms_per_request"] = round(1000 * (_cpu_seconds(server.proc.pid) - s0) / max(r["ok"], 1), 1)
            r["memory"] = _memory(server.proc.pid)
        finally:
            server.stop()
        rows.append({"max_batch_size": size, **r})
        print(f"max_batch_size {size}: {r['requests_per_s']} req/s, {r['errors']} errors, p50 {r['all']['p50_ms']} ms, "
              f"p99 {r['all']['p99_ms']} ms, server CPU per request {r['server_cpu_ms_per_request']} ms", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Launch the app (unless --url), run the scenarios, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--score-fraction", type=float, default=0.3, help="share of /score calls in the mix scenario")
    ap.add_argument("--single", type=int, default=200, help="interleaved single-user rounds (0 = skip)")
    ap.add_argument("--scenarios", default="single,generate,mix",
                    help="comma-separated, run in this order on one server (a repeat shows whether memory grows)")
    ap.add_argument("--model-dir", default=str(ROOT / "checkpoints"), help="model of the launched app")
    ap.add_argument("--url", default=None, help="an already running app instead of launching one")
    ap.add_argument("--pid", type=int, default=None, help="with --url: the server's process id (for its memory)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--sessions", action="store_true",
                    help="each client keeps one Gradio session, as gradio_client and the page do (default: a new "
                         "session per call, as plain REST calls without a session_hash get)")
    ap.add_argument("--sweep-batch", nargs="*", type=int, default=[],
                    help="only the generate scenario, on a fresh app per /generate max_batch_size (1 = unbatched)")
    args = ap.parse_args(argv)
    if args.sweep_batch:
        rows = sweep_batch(args.model_dir, args.sweep_batch, args.clients, args.seconds)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return 0
    server = None
    if args.url:
        url, pid = args.url.rstrip("/") + "/", args.pid
    else:
        from app_server import start_app
        server = start_app(args.model_dir, log=Path(tempfile.gettempdir()) / "serve_load_server.log")
        url, pid = server.url, server.proc.pid
    from gan.hardware import cpu_name
    res: dict = {"machine": f"{cpu_name()}, {os.cpu_count()} CPUs",
                 "python": platform.python_version(), "sessions": args.sessions,
                 "env": {k: v for k, v in os.environ.items() if k.startswith("GAN_APP_")}}
    try:
        import httpx
        res["memory_start"] = _memory(pid)
        asyncio.run(call_once(url))
        for i, scenario in enumerate(args.scenarios.split(",")):
            name = scenario if scenario not in res else f"{scenario}-{i + 1}"  # a repeat: does memory keep growing?
            c0, s0 = resource.getrusage(resource.RUSAGE_SELF), _cpu_seconds(pid)
            if scenario == "single":
                if args.single:
                    res["single"] = asyncio.run(single_user(url, args.single, args.sessions))
            else:
                frac = args.score_fraction if scenario == "mix" else 0.0
                res[name] = asyncio.run(run_clients(url, args.clients, args.seconds, frac, sessions=args.sessions))
            c1 = resource.getrusage(resource.RUSAGE_SELF)
            if name in res:
                res[name]["client_cpu_s"] = round(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime, 1)
                res[name]["memory"] = _memory(pid)
                done = res[name].get("ok") or 3 * res[name].get("n", 0)  # single: three requests a round
                if s0 is not None and done:
                    res[name]["server_cpu_ms_per_request"] = round(1000 * (_cpu_seconds(pid) - s0) / done, 1)
        del httpx
    finally:
        if server:
            server.stop()
    _print(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0 if all(r.get("errors", 0) == 0 for k, r in res.items() if k.startswith(("generate", "mix"))) else 1


async def call_once(url: str) -> None:
    """Warm-up: one /generate and one /score (lazy imports, the classifier)."""
    import httpx
    async with httpx.AsyncClient(timeout=120.0) as http:
        await one_request(http, url, "generate", random.Random(0))
        await one_request(http, url, "score", random.Random(0))


def _print(res: dict) -> None:
    print(f"machine: {res['machine']}; server memory at start: {res.get('memory_start')}")
    if "single" in res:
        s = res["single"]
        print(f"single user, {s['n']} interleaved rounds: /generate p50 {s['generate_p50_ms']} ms with the image "
              f"downloaded ({s['ratio']:.3f}x /noop), {s['generate_answer_p50_ms']} ms until its answer "
              f"({s['answer_ratio']:.3f}x); /noop p50 {s['noop_p50_ms']} ms")
    for name in [k for k in res if k.startswith(("generate", "mix"))]:
        r = res[name]
        print(f"{name}: {r['clients']} clients for {r['wall_s']} s: {r['requests_per_s']} req/s, {r['errors']} errors, "
              f"p50 {r['all']['p50_ms']} ms, p99 {r['all']['p99_ms']} ms; server memory {r.get('memory')}; "
              f"load generator CPU {r['client_cpu_s']} s, "
              f"server CPU per request {r.get('server_cpu_ms_per_request')} ms")
        for op in ("generate", "score"):
            if op in r and name.startswith("mix"):
                print(f"    {op}: {r[op]['req_per_s']} req/s, p50 {r[op]['p50_ms']} ms, p99 {r[op]['p99_ms']} ms")
        for kind, n in list(r["error_kinds"].items())[:5]:
            print(f"    error x{n}: {kind}")


if __name__ == "__main__":
    sys.exit(main())
