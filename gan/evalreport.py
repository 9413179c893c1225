"""eval.json as tables: the one place that turns evaluation results into rows and Markdown.

The model card, the app's Model tab and ``python -m gan.evaluate`` all render through here, so a metric
has one label, one direction and one number format.  No torch import: a card renders without torchmetrics.

Accepted eval.json shapes (a number may also be ``{"mean": m, "std": s}``, and ``"<key>_std"`` joins
``"<key>"`` as its std)::

    {"metrics": {"fid": 8.1, "kid": 0.004, ...}, "references": {"train": {"fid": 0.1}, ...},
     "memorization": {...}, "coverage": {...}, "class_fid": {...}, "n_samples": 10000, ...}   # gan.evaluate
    {"fid": 8.1, "kid": 0.004, ...}                                          # flat: the model's own row
    {"rows": [{"name": "this model", "fid": 8.1}, {"name": "...", "fid": 0.9}]}   # first row = the model

    rows = metric_rows(ev)               # [[label, cell, ...], ...] with metric_header(ev) as the header
    print(metric_table(ev))              # the same as a Markdown table
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

EVAL_FILE = "eval.json"  # a model folder's evaluation, written by `python -m gan.evaluate --write`

MISSING = "–"


class Metric(NamedTuple):
    """How a metric is shown: its name, which way is better, number format, display scale (named in the label)."""

    name: str
    better: str | None  # "lower" | "higher" | None
    fmt: str = "{:.4g}"
    scale: float = 1.0


# the reference rows gan.metrics computes, by eval.json key
REFERENCE_NAMES = {"train": "real train images (floor)", "blur": "train images, blur sigma 1 px",
                   "noise": "train images, noise sigma 0.1"}
# eval.json metric key -> how it is shown; table columns follow this order
METRICS = {
    "fid": Metric("FID", "lower", "{:.2f}"),
    "kid": Metric("KID", "lower", "{:.2f}", 1000.0),
    "precision": Metric("precision", "higher", "{:.3f}"),
    "recall": Metric("recall", "higher", "{:.3f}"),
    "density": Metric("density", "higher", "{:.3f}"),
    "coverage": Metric("coverage", "higher", "{:.3f}"),
    "inception_score": Metric("IS", "higher", "{:.2f}"),
    "is": Metric("IS", "higher", "{:.2f}"),
    "coverage_min": Metric("min class share", "higher", "{:.3f}"),
    "class_fid_mean": Metric("mean class FID", "lower", "{:.2f}"),
    "label_accuracy": Metric("label accuracy", "higher", "{:.3f}"),
    "accuracy": Metric("label accuracy", "higher", "{:.3f}"),
}
# numeric entries of eval.json that describe the evaluation rather than score the model
INFO_KEYS = {"n", "num_samples", "n_samples", "num_real", "num_fake", "step", "steps", "epoch", "seed", "batch_size",
             "num_classes", "time_s", "wall_time_s", "reference_samples"}
ARROWS = {"lower": " ↓", "higher": " ↑"}
CLASS_COLUMNS = {"class_fid": "FID within class", "coverage": "share of samples"}


# ---- reading eval.json ----------------------------------------------------------------------------
def parse_eval_results(results: dict | None) -> tuple[dict, list[tuple[str, dict]], dict]:
    """(the model's metrics, [(reference name, metrics)], other info) from an eval.json-style dict."""
    if not results:
        return {}, [], {}
    if not isinstance(results, dict):
        raise ValueError(f"eval results must be a JSON object, got {type(results).__name__}")
    if isinstance(results.get("rows"), list) and results["rows"]:
        rows = [r for r in results["rows"] if isinstance(r, dict)]
        refs = [(str(r.get("name", f"reference {i}")), _metrics(r)) for i, r in enumerate(rows[1:], 1)]
        return _metrics(rows[0]), refs, {k: v for k, v in results.items() if k != "rows"}
    row = next((results[k] for k in ("metrics", "model") if isinstance(results.get(k), dict)), results)
    model_row = _metrics(row)
    raw_refs = results.get("references", results.get("reference"))
    refs: list[tuple[str, dict]] = []
    if isinstance(raw_refs, dict):
        refs = [(REFERENCE_NAMES.get(k, k), _metrics(v)) for k, v in raw_refs.items() if isinstance(v, dict)]
    elif isinstance(raw_refs, list):
        refs = [(str(r.get("name", f"reference {i}")), _metrics(r)) for i, r in enumerate(raw_refs, 1)
                if isinstance(r, dict)]
    info = {k: v for k, v in results.items() if k not in ("metrics", "references", "reference")
            and not (row is results and k in model_row)}
    return model_row, refs, info


def _metrics(d: dict) -> dict:
    """The metric entries of a dict: finite numbers or {"mean", "std"} pairs (counts and settings excluded)."""
    out: dict = {}
    for k, v in d.items():
        if isinstance(v, bool) or k in INFO_KEYS:
            continue
        if isinstance(v, (int, float)) and math.isfinite(v):
            out[k] = v
        elif isinstance(v, dict) and isinstance(v.get("mean"), (int, float)) and math.isfinite(v["mean"]):
            out[k] = v
    for k in [k for k in out if k.endswith("_std") and isinstance(out.get(k[:-4]), (int, float))]:
        out[k[:-4]] = {"mean": out[k[:-4]], "std": out.pop(k)}
    return out


def metric_value(v: float | dict) -> float:
    """The number of a metric entry (the mean of a {"mean", "std"} pair)."""
    return float(v["mean"]) if isinstance(v, dict) else float(v)


def format_metric(key: str, v: float | dict | None) -> str:
    """One cell: the metric's format and scale, "mean ± std" for pairs, a dash when missing."""
    if v is None:
        return MISSING
    m = METRICS.get(key, Metric(key, None))
    if isinstance(v, dict):
        std = v.get("std")
        mean = format_metric(key, v["mean"])
        return f"{mean} ± {format_metric(key, std)}" if isinstance(std, (int, float)) else mean
    if key not in METRICS and isinstance(v, int):
        return str(v)
    return m.fmt.format(v * m.scale)


def metric_name(key: str) -> str:
    """The readable name of a metric key (the key itself when unknown)."""
    return METRICS.get(key, Metric(key, None)).name


def metric_label(key: str) -> str:
    """Table column label of a metric key: its name, the display scale, and ↓ / ↑ for the better direction."""
    m = METRICS.get(key, Metric(key, None))
    return m.name + (f" ×{m.scale:g}" if m.scale != 1 else "") + ARROWS.get(m.better or "", "")


# ---- tables -----------------------------------------------------------------------------------------
def metric_columns(results: dict | None) -> list[str]:
    """The metric keys any row has: known ones in METRICS order, then the others as they come."""
    model_row, refs, _ = parse_eval_results(results)
    seen: list[str] = []
    for row in [model_row, *(r for _, r in refs)]:
        seen += [k for k in row if k not in seen]
    return [k for k in METRICS if k in seen] + [k for k in seen if k not in METRICS]


def metric_header(results: dict | None) -> list[str]:
    """Header of metric_rows: an empty corner, then one label per column."""
    return ["", *(metric_label(k) for k in metric_columns(results))]


def metric_rows(results: dict | None, *, model_name: str = "this model") -> list[list[str]]:
    """[[row name, cell, ...]]: the model's row, then the reference rows; [] when the model has no metrics."""
    model_row, refs, _ = parse_eval_results(results)
    if not model_row:
        return []
    keys = metric_columns(results)
    return [[name, *(format_metric(k, row.get(k)) for k in keys)] for name, row in [(model_name, model_row), *refs]]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table ("" without rows)."""
    if not rows:
        return ""

    def line(cells: list[str]) -> str:
        return "|" + "".join(f" {c} |" if c else " |" for c in cells)
    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


def metric_table(results: dict | None, *, model_name: str = "this model") -> str:
    """Markdown: the model's metrics next to the reference rows, same columns ("" when not evaluated)."""
    return markdown_table(metric_header(results), metric_rows(results, model_name=model_name))


def memorization_table(mem: dict) -> str:
    """Markdown table of nearest-training-image distances, samples vs real test images, and the verdict."""
    s, t = mem["samples"], mem["test"]
    lines = ["| nearest training image (L2, pixels in [0, 1]) | n | mean | 1st percentile "
             f"| share < {s['threshold']} |",
             "|---|---|---|---|---|"]
    for label, d in (("samples", s), ("real test images", t)):
        lines.append(f"| {label} | {d['n']} | {d['mean']:.3f} | {d['p1']:.3f} | {d['frac_below']:.2%} |")
    return "\n".join(lines) + f"\n\nMemorization: {mem['verdict']}."


def memorization_markdown(results: dict | None) -> str:
    """The memorization check of eval.json as Markdown: a table, or the stored table, or the verdict ("" if none)."""
    results = results or {}
    mem = results.get("memorization")
    if isinstance(mem, dict) and all(isinstance(mem.get(k), dict) for k in ("samples", "test")) and mem.get("verdict"):
        try:
            return memorization_table(mem)
        except (KeyError, TypeError, ValueError):
            pass
    if isinstance(results.get("memorization_table"), str):
        return results["memorization_table"].strip()
    if isinstance(mem, dict) and mem.get("verdict"):
        return f"Memorization: {mem['verdict']}."
    return ""


def class_rows(results: dict | None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the per-class table: FID within each class and share of samples ([] when absent)."""
    ev = results or {}
    keys = [k for k in CLASS_COLUMNS if isinstance(ev.get(k), dict)]
    if not keys:
        return [], []
    names = list(ev[keys[0]])
    return (["class", *(CLASS_COLUMNS[k] for k in keys)],
            [[str(n), *(_cell(ev[k].get(n)) for k in keys)] for n in names])


def class_table(results: dict | None) -> str:
    """Markdown per-class table ("" when eval.json has no per-class entries)."""
    return markdown_table(*class_rows(results))


def _cell(v: Any) -> str:
    if v is None:
        return MISSING
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def eval_details(results: dict | None) -> str:
    """A short '10,000 samples, references with ..., seed 0, classifier accuracy, date' phrase."""
    info = results or {}
    parts = []
    n = info.get("n_samples", info.get("num_samples"))
    if isinstance(n, int):
        parts.append(f"{n:,} samples")
    if isinstance(info.get("reference_samples"), int):
        parts.append(f"references with {info['reference_samples']:,} images")
    if isinstance(info.get("seed"), int):
        parts.append(f"seed {info['seed']}")
    acc = info.get("classifier", {}).get("test_accuracy") if isinstance(info.get("classifier"), dict) else None
    if isinstance(acc, (int, float)):
        parts.append(f"feature classifier test accuracy {acc:.2%}")
    if isinstance(info.get("date"), str):
        parts.append(info["date"])
    return ", ".join(parts)


def evaluation_markdown(results: dict | None, *, model_name: str = "this model") -> str:
    """The whole evaluation as Markdown: metric table, how it was measured, memorization ("" if not evaluated)."""
    table = metric_table(results, model_name=model_name)
    details = eval_details(results)
    parts = [table, f"_{details}._" if table and details else "", memorization_markdown(results)]
    return "\n\n".join(p for p in parts if p)
