"""Stacking per-network tables into study tables, shared by every stage."""

from __future__ import annotations

import pandas as pd


def stack(frames: list[pd.DataFrame], columns) -> pd.DataFrame:
    """Concatenate per-network frames into one with `columns`; without any (a run that reached no
    checkpoint, or diverged) an empty table with those columns, so the study's tables still assemble."""
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)[list(columns)]


def read_tables(paths) -> pd.DataFrame:
    """Per-run CSVs read and stacked into one table. Empty ones (a run with nothing to measure) add no
    rows and do not turn numeric columns into text."""
    frames = [pd.read_csv(p) for p in paths]
    filled = [f for f in frames if len(f)]
    if not filled:
        return frames[0] if frames else pd.DataFrame()
    return pd.concat(filled, ignore_index=True)
