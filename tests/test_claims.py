"""The claims stage: the verdict rule on known intervals, claims measured from hand-made tables with known
answers, and the registry kept in step with its protocol (docs/protocols.md §11)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from robustgen.settings import ClaimRule
from robustgen.stages import claims as c

ROOT = Path(__file__).resolve().parents[1]
RULE = ClaimRule(min_seeds=3, level=0.95)


@pytest.mark.parametrize("low, high, side, expected", [
    (0.1, 0.5, ">", "supported"),
    (0.0, 0.5, ">", "inconclusive"),      # reaches the boundary
    (-0.5, -0.1, ">", "contradicted"),
    (0.0, 0.0, ">", "contradicted"),      # exactly the boundary: against a strict claim
    (0.0, 0.0, ">=", "supported"),        # ... and for a non-strict one
    (-0.2, 0.0, "<=", "supported"),
    (-0.2, 0.1, "<=", "inconclusive"),
    (0.1, 0.2, "<=", "contradicted"),
    (-0.3, -0.1, "<", "supported"),
])
def test_verdict_on_known_intervals(low, high, side, expected):
    assert c.verdict(low, high, 5, side, 0.0, min_seeds=3) == expected


def test_too_few_runs_are_inconclusive_however_narrow():
    assert c.verdict(0.5, 0.6, 2, ">", 0.0, min_seeds=3) == "inconclusive"
    assert c.verdict(0.5, 0.6, 3, ">", 0.0, min_seeds=3) == "supported"


def grokking_runs(fast_steps, slow_steps):
    """α = 8 runs at wd 0.1 (generalising at `fast_steps`) and 0.01 (`slow_steps`), one per seed."""
    rows = []
    for seed, (fast, slow) in enumerate(zip(fast_steps, slow_steps)):
        for wd, step in ((0.1, fast), (0.01, slow)):
            rows.append(dict(dataset="mnist_embedded", init_scale=8.0, weight_decay=wd, seed=seed,
                             status="generalised", memorised_step=100.0, generalised_step=float(step), steps=step + 10,
                             final_test_acc=0.9))
    return pd.DataFrame(rows)


def row(table, id):
    return table.set_index("id").loc[id]


def test_weight_decay_claim_is_the_paired_log_ratio_over_seeds():
    tables = {"grokking_runs": grokking_runs([1000, 2000, 500], [10000, 20000, 5000])}
    got = row(c.evaluate(tables, RULE), "omnigrok_weight_decay")
    assert got["estimate"] == pytest.approx(1.0)          # 10x sooner in every seed
    assert got["ci_low"] == pytest.approx(1.0) and got["ci_high"] == pytest.approx(1.0)
    assert got["n"] == 3 and got["verdict"] == "supported"


def test_one_reversed_seed_of_three_leaves_the_claim_inconclusive():
    tables = {"grokking_runs": grokking_runs([1000, 2000, 5000], [10000, 20000, 500])}
    got = row(c.evaluate(tables, RULE), "omnigrok_weight_decay")
    assert got["estimate"] == pytest.approx(1 / 3)
    assert got["ci_low"] < 0 < got["ci_high"] and got["verdict"] == "inconclusive"


def test_the_interval_is_students_t_over_seeds():
    effects = [0.2, 0.4, 0.9, 1.1, 1.4]
    estimate, low, high, n = c.interval(effects, 0.95)
    half = 2.7764451 * np.std(effects, ddof=1) / np.sqrt(5)  # t(0.975, 4 degrees of freedom)
    assert estimate == pytest.approx(0.8) and n == 5
    assert (low, high) == pytest.approx((0.8 - half, 0.8 + half), abs=1e-6)
    assert np.isnan(c.interval([0.3], 0.95)[1])  # one seed: no interval


def test_three_agreeing_seeds_of_a_null_effect_are_rarely_supported():
    """With 3 seeds a percentile bootstrap of the mean is the range of the seeds, so three seeds of one sign
    (1 in 8 under a null) would be 'supported'; the t interval keeps the false verdicts near its 2.5 %."""
    rng = np.random.default_rng(0)
    supported = sum(c.verdict(*c.interval(list(rng.normal(size=3)), 0.95)[1:3], 3, ">", 0.0, 3) == "supported"
                    for _ in range(4000))
    assert supported / 4000 < 0.04


def test_effects_are_one_per_seed_and_rounded():
    effects, note = c.by_seed([(0, 0.5), (0, 1.5), (1, 2 / 6 - 1 / 6 - 1 / 6), (2, float("nan"))], "a value")
    assert effects == {"seed 0": 1.0, "seed 1": 0.0}  # seed 0's two groups averaged; a float residue is 0
    assert note == "1 of 4 runs left out (no a value)"
    with pytest.raises(c.NotMeasured):
        c.by_seed([(0, float("nan"))], "a value")


def adversarial_runs(collapses: dict[str, list[bool]]):
    rows = []
    for method, flags in collapses.items():
        for i, co in enumerate(flags):
            eps, seed = (0.1, 0.3)[i % 2], i // 2
            rows.append(dict(dataset="mnist_embedded", method=method, eps=eps, beta=0.0, seed=seed,
                             co_verdict="collapse" if co else "none", co=co, alignment_before=0.9,
                             alignment_after=0.5 if co else 0.9))
    return pd.DataFrame(rows)


def test_co_rate_difference_counts_collapses_per_seed():
    # 3 seeds x 2 eps: FGSM collapses at eps 0.3 in every seed, PGD never
    runs = adversarial_runs({"fgsm": [False, True] * 3, "pgd": [False, False] * 3})
    got = c.evaluate({"adversarial_runs": runs}, RULE).set_index("id")
    assert got.loc["ortiz_fgsm_vs_pgd", "estimate"] == pytest.approx(0.5)
    assert got.loc["ortiz_fgsm_vs_pgd", "verdict"] == "supported"
    assert got.loc["wong_rs_fgsm", "verdict"] == "not measured"
    assert "rs_fgsm" in got.loc["wong_rs_fgsm", "note"]
    assert got.loc["andriushchenko_alignment", "estimate"] == pytest.approx(-0.4)
    assert got.loc["andriushchenko_alignment", "verdict"] == "supported"


def test_no_gain_is_not_a_collapse():
    runs = adversarial_runs({"fgsm": [False, True] * 3, "pgd": [False, False] * 3})
    runs.loc[runs["method"] == "pgd", "co_verdict"] = "no_gain"
    got = row(c.evaluate({"adversarial_runs": runs}, RULE), "ortiz_fgsm_vs_pgd")
    assert got["estimate"] == pytest.approx(0.5)


def test_a_claim_whose_premise_is_not_supported_is_inconclusive():
    blocks = pd.DataFrame([dict(dataset="mnist_embedded", train_size=500, model="resnet56_w16_s2", threshold=0.8,
                                network=network, seed=seed, largest_block_minus_untrained=value)
                           for seed in range(4)
                           for network, value in (("untrained", 0), ("standard", -(seed + 1)), ("pgd", -9))])
    got = c.evaluate({"representation_blocks": blocks}, RULE).set_index("id")
    assert got.loc["study_standard_block_structure", "verdict"] == "contradicted"  # no block structure to lose
    assert got.loc["cianfarani_block_structure", "ci_high"] < 0  # PGD's block is smaller in every seed ...
    assert got.loc["cianfarani_block_structure", "verdict"] == "inconclusive"  # ... but there was nothing to lose
    assert "premise" in got.loc["cianfarani_block_structure", "note"]
    assert got.loc["study_standard_block_structure", "estimate"] == pytest.approx(-2.5)


def test_long_runs_are_the_configured_groups_not_the_longest_runs():
    onsets = pd.DataFrame([dict(dataset="mnist_embedded", init_scale=8.0, weight_decay=wd, jacobian_penalty=0.0,
                                seed=seed, final_step=steps, status="generalised", lc_fall_rise_fall=flag,
                                lc_with_output_fall_rise_fall=False, robust_onset_step=50000.0,
                                generalised_step=30000.0, lc_descent_step=40000.0)
                           for seed in range(3)
                           for wd, steps, flag in ((0.01, 100000, True), (0.1, 100000, False))])
    groups = pd.DataFrame([dict(init_scale=8, weight_decay=0.01)])
    got = c.evaluate({"delayed_onsets": onsets, "long_run_groups": groups}, RULE).set_index("id")
    assert got.loc["humayun_fall_rise_fall", "estimate"] == 1.0  # wd 0.1 ran as long but is not a long run
    assert got.loc["humayun_fall_rise_fall", "verdict"] == "supported"
    assert got.loc["humayun_fall_rise_fall_reference", "verdict"] == "contradicted"
    assert got.loc["humayun_robust_in_final_descent", "estimate"] == 10000.0


def test_a_missing_table_is_not_measured_for_every_claim():
    table = c.evaluate({}, RULE)
    assert set(table["verdict"]) == {"not measured"}
    assert list(table["id"]) == [claim.id for claim in c.CLAIMS]


def test_every_claim_has_a_row_in_its_protocol_and_every_row_a_claim():
    text = (ROOT / "docs" / "protocols.md").read_text()
    section = text[text.index("## §11"):text.index("## References")]
    documented = {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| (\w+) \|.*\| ([<>]=? [0-9.]+) \|$",
                                                                        section, re.M)}
    registered = {claim.id: f"{claim.side} {claim.boundary:g}" for claim in c.CLAIMS}
    assert documented == registered


def test_claims_figure_and_pages_hold_every_claim():
    from robustgen.figures.claims import claims_figure
    from robustgen.pages import claims_html, results_markdown

    tables = {"grokking_runs": grokking_runs([1000, 2000, 500], [10000, 20000, 5000])}
    table = c.evaluate(tables, RULE)
    stamp = dict(commit="abc123", config_digest="0123", cores=2, threads="1", date="2026-12-06 00:00 UTC")
    page, markdown = claims_html(table, stamp), results_markdown(table, stamp, tables["grokking_runs"])
    for claim in c.CLAIMS:
        assert claim.id in page and claim.id in markdown
    assert "abc123" in page and "config digest 0123" in markdown
    assert len(claims_figure(table).axes) >= len(c.CLAIMS)
