"""Reports: summary tables and figures for analysts.

Matplotlib is not thread-safe (its text and mathtext machinery share state), and flows render figures from
task threads: every figure is drawn under `FIGURE_LOCK`.
"""

import threading

FIGURE_LOCK = threading.Lock()


def sweep_positions(values: list[str]) -> tuple[dict[str, float], bool]:
    """Where each swept value goes on an axis or in a table: (value -> position, whether all are numbers).

    Numbers sit at their value (text order would put 10 before 5); otherwise values keep the order they were swept.
    """
    values = list(dict.fromkeys(str(v) for v in values))
    numeric = all(is_number(v) for v in values)
    return {v: (float(v) if numeric else float(i)) for i, v in enumerate(values)}, numeric


def is_number(v: object) -> bool:
    """Whether `v` reads as a float."""
    try:
        float(str(v))
    except ValueError:
        return False
    return True
