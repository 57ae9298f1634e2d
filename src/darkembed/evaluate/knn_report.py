"""The [GNN] Table 3 layout of the leave-one-out kNN table (`darkembed.stages.knn.knn_table`, which reads the
partitions and scores them): rows = classes with their support, columns = methods, cells = F1 mean ± std over
days. Reads and writes nothing.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def table3_markdown(table: pl.DataFrame, title: str, paper: dict[str, dict[str, str]] | None = None) -> str:
    """The table in the [GNN] Table 3 layout: rows = classes (support), columns = methods, cells = mean ± std."""
    methods = list(dict.fromkeys(table["method"].to_list()))
    classes = [c for c in dict.fromkeys(table.sort("class")["class"].to_list()) if c != "macro"] + ["macro"]
    head = "| class (support) | " + " | ".join(methods) + (" | paper" if paper else "") + " |"
    lines = [f"## {title}", "", head, "|---" * (len(methods) + 1 + bool(paper)) + "|"]
    for c in classes:
        sub = table.filter(pl.col("class") == c)
        support = int(sub["support"].max() or 0) if sub.height else 0
        cells = []
        for m in methods:
            r = sub.filter(pl.col("method") == m)
            if r.height == 0 or r["f1_mean"][0] is None or np.isnan(r["f1_mean"][0]):
                cells.append("-")
            else:
                std = r["f1_std"][0]
                cells.append(
                    f"{r['f1_mean'][0]:.2f}" + ("" if std is None or np.isnan(std) else f" ± {std:.2f}")
                )
        row = f"| {c} ({support}) | " + " | ".join(cells)
        if paper:
            row += " | " + paper.get(c, {}).get("all", "")
        lines.append(row + " |")
    return "\n".join(lines) + "\n"
