"""The Score tab's results table: one row per image under short headers, and a legend that explains them.

The headers stay short so that the table reads at the app's default width; what each column means is in
``table_legend()``, shown under the table.
"""

from __future__ import annotations

from typing import Any

# (header, what the column holds), in the table's order
COLUMNS = (("image", "the file name"),
           ("verdict", "real, generated or unlike the data; \"unsure\" near the decision line"),
           ("by", "the signal that decided: the critic (this model's samples), the detector (any generator's "
                  "traces), the mirror (the detector on the mirrored image), the distance to the data or the "
                  "nearest real garment"),
           ("P(real)", "the answer's probability that the image is real (\"sigmoid\": uncalibrated)"),
           ("D", "the game's discriminator's P(real), beside the answer"),
           ("logit", "the answer's logit"),
           ("vs real", "its score is above this share of held-out real images"),
           ("vs gen.", "its score is above this share of held-out generated images"),
           ("class", "what the classifier reads, and how sure it is"),
           ("OOD", "out of distribution: unlike Fashion-MNIST"))
HEADERS = [name for name, _ in COLUMNS]


def empty_score_table() -> Any:
    """An empty score table with its column headers."""
    import pandas as pd
    return pd.DataFrame([], columns=HEADERS)


def score_table(results: list[dict], failed: list[tuple[str, str]]) -> Any:
    """A DataFrame with one row per scored image (results of the Score tab) and one per image not scored."""
    import pandas as pd
    rows = [[d["image"], d["verdict"] + (" (unsure)" if d.get("unsure") else ""), d.get("decided_by") or d["scorer"],
             _fmt(d["p_real"]) + ("" if d["calibrated"] else " (sigmoid)"), _fmt(d["d_p_real"]),
             _fmt(d["logit"], "+"), _fmt(d.get("percentile_real"), "%"), _fmt(d.get("percentile_fake"), "%"),
             f"{d['pred_name']} ({100 * d['pred_prob']:.0f}%)" if d.get("pred_name") else "-",
             "-" if d.get("ood") is None else ("yes" if d["ood"] else "no")] for d in results]
    rows += [[name, "not scored"] + ["-"] * (len(HEADERS) - 2) for name, _ in failed]
    return pd.DataFrame(rows, columns=HEADERS)


def table_legend() -> str:
    """What each column of the table holds, in one line of Markdown."""
    return "<sub>" + " · ".join(f"**{name}**: {what}" for name, what in COLUMNS[1:]) + "</sub>"


def _fmt(v: Any, style: str = "") -> str:
    if v is None:
        return "-"
    if style == "%":
        return f"{v:.0f}%"
    if style == "+":
        return f"{v:+.2f}"
    return f"{v:.3f}" if isinstance(v, float) else str(v)
