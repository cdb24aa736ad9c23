"""Pages generated from a finished study: the claims page that opens the report, and the results page of the
docs. Prose around them explains; every number on them comes from results/, stamped with where it came from."""

from __future__ import annotations

import html
import math

import pandas as pd

VERDICT_MARKS = {"supported": "✅ supported", "contradicted": "❌ contradicted", "inconclusive": "➖ inconclusive",
                 "not measured": "· not measured"}
VERDICT_CSS = {"supported": "#d9f2d9", "contradicted": "#f8d7d7", "inconclusive": "#fdebc8", "not measured": "#eeeeee"}


def number(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—" if x is None or math.isnan(x) else ("∞" if x > 0 else "−∞")
    return f"{x:.3g}"


def stamp_lines(stamp: dict) -> list[str]:
    return [f"commit {stamp.get('commit', 'unknown')}", f"config digest {stamp.get('config_digest', 'unknown')}",
            f"{stamp.get('cores', '?')} cores, {stamp.get('threads', '?')} thread(s) per job",
            f"written {stamp.get('date', 'unknown')}", f"torch {stamp.get('torch', '?')}"]


def counts(claims: pd.DataFrame) -> str:
    found = claims["verdict"].value_counts()
    return ", ".join(f"{int(found[v])} {v}" for v in VERDICT_MARKS if v in found)


def claims_html(claims: pd.DataFrame, stamp: dict) -> str:
    """The claims page of the Snakemake report: one row per claim with its verdict."""
    head = ("<tr><th>claim</th><th>source</th><th>statement</th><th>setting</th><th>effect</th><th>claimed</th>"
            "<th>estimate [95 % interval]</th><th>n</th><th>verdict</th><th>note</th></tr>")
    rows = []
    for _, c in claims.iterrows():
        cells = [c["id"], c["source"], c["statement"], c["setting"], c["effect"], c["claimed"],
                 f"{number(c['estimate'])} [{number(c['ci_low'])}, {number(c['ci_high'])}]", str(int(c["n"])),
                 c["verdict"], c["note"] if isinstance(c["note"], str) else ""]
        style = f' style="background:{VERDICT_CSS.get(c["verdict"], "#fff")}"'
        rows.append(f"<tr{style}>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in cells) + "</tr>")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>robustgen: the study's claims</title>
<style>body{{font-family:sans-serif;font-size:13px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:3px 6px;vertical-align:top}}</style></head>
<body><h1>The study's claims</h1>
<p>Each claim is evaluated from the study's tables by a rule fixed in advance (docs/protocols.md §11): supported
when the 95 % Student-t interval over seeds lies on the claim's side of its boundary, contradicted when it lies
on the other side, inconclusive otherwise (or with fewer than three seeds, or an unsupported premise). {html.escape(counts(claims))}.</p>
<p>{html.escape(" · ".join(stamp_lines(stamp)))}</p>
<table>{head}{"".join(rows)}</table></body></html>
"""


def results_markdown(claims: pd.DataFrame, stamp: dict, grokking: pd.DataFrame | None = None,
                     figures: dict[str, str] | None = None) -> str:
    """docs/results.md: the claims of one finished study, and the grokking runs' steps, stamped; `figures`
    ({path relative to the page: name}) are the study's own figures copied beside it."""
    lines = ["# Results of a finished study (generated)", "",
             "Written by `python -m robustgen results-page` from `results/` of one finished study; do not edit by "
             "hand. The claims, their effects and decision rules are defined in [protocols §11](protocols.md); "
             "what each stage measures is in [stages/](stages/).", "",
             "Study: " + "; ".join(stamp_lines(stamp)) + ".", "",
             f"## Claims ({counts(claims)})", "",
             "| claim | source | setting | effect | claimed | estimate [95 % interval] | n | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for _, c in claims.iterrows():
        cells = [f"**{c['id']}**: {c['statement']}", c["source"], c["setting"], c["effect"], f"`{c['claimed']}`",
                 f"{number(c['estimate'])} [{number(c['ci_low'])}, {number(c['ci_high'])}]", str(int(c["n"])),
                 VERDICT_MARKS.get(c["verdict"], c["verdict"]) + (f" ({c['note']})" if isinstance(c["note"], str)
                                                                  and c["verdict"] == "not measured" else "")]
        lines.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
    for path, name in (figures or {}).items():
        caption = ("Each claim's effect: mean over seeds with its 95 % Student-t interval, seeds as dots, "
                   "the boundary dashed, coloured by verdict." if name == "claims" else
                   "Train (dashed) and test (solid) accuracy of every grokking run; triangles: memorised, stars: "
                   "generalised checkpoints.")
        lines += ["", f"![{name}]({path})", "", f"*{caption}*"]
    if grokking is not None and len(grokking):
        lines += ["", "## Grokking runs", "", "Steps at the memorised (train accuracy ≥ threshold) and generalised "
                  "(test accuracy > threshold) checkpoints, per run.", "",
                  "| dataset | α | wd | seed | status | memorised step | generalised step | final test acc |",
                  "|---|---|---|---|---|---|---|---|"]
        for _, r in grokking.iterrows():
            lines.append(f"| {r['dataset']} | {r['init_scale']:g} | {r['weight_decay']:g} | {r['seed']} | {r['status']} "
                         f"| {number(r['memorised_step'])} | {number(r['generalised_step'])} "
                         f"| {number(r['final_test_acc'])} |")
    return "\n".join(lines) + "\n"
