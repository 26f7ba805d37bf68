"""The report's building blocks: the `Report` being written, markdown tables, one number format per column,
plot files. Shared by the leakage, classification and AUC sections."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.fileio import write_atomic

SEP = " ± "


@dataclass
class Report:
    path: Path
    plots: list[Path] = field(default_factory=list)
    headlines: list[str] = field(default_factory=list)
    failed_cells: int = 0


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)



def column_format(values: pd.Series | np.ndarray, signed: bool = False, digits: int = 3,
                  decimals: int | None = None):
    """One number format for a whole column: `decimals` fixed decimals if given; else fixed decimals giving
    `digits` significant digits to its smallest nonzero magnitude, or scientific notation when that needs more
    than 4 decimals or the magnitudes span over 1000x."""
    sign = "+" if signed else ""
    if decimals is not None:
        return lambda v: f"{v:{sign}.{decimals}f}"
    magnitudes = np.abs(np.asarray(pd.Series(values).dropna(), dtype=float))
    magnitudes = magnitudes[magnitudes > 0]
    smallest = magnitudes.min() if magnitudes.size else 1.0
    needed = max(0, digits - 1 - math.floor(math.log10(smallest)))
    if needed > 4 or (magnitudes.size and magnitudes.max() / smallest > 1000):
        return lambda v: f"{v:{sign}.{digits - 1}e}"
    return lambda v: f"{v:{sign}.{needed}f}"



def mean_std_column(means: pd.Series, stds: pd.Series, signed: bool = False,
                     decimals: int | None = None) -> list[str]:
    """`mean ± std` cells of one column, the mean's format shared by the column and reused for the std."""
    fmt = column_format(means, signed, decimals=decimals)
    plain = column_format(means, decimals=decimals)
    return ["—" if pd.isna(a) else fmt(a) if pd.isna(b) else f"{fmt(a)}{SEP}{plain(b)}" for a, b in zip(means, stds,
                                                                                                    strict=True)]



def strength_text(row: pd.Series) -> str:
    if pd.isna(row["strength_key"]):
        return "—"
    name = row["strength_param"]
    return f"{'ε' if name == 'epsilon' else name}={row['strength_key']:g}"



def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")



def save_figure(fig, path: Path) -> None:
    write_atomic(path, lambda p: fig.savefig(p, dpi=110, format="png"))
