"""Helpers shared by the Prefect tasks: retry only on I/O errors."""

from __future__ import annotations

from typing import Any


def io_errors_only(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn`: retry a task only when it failed on an I/O error (computations fail fast)."""
    try:
        state.result()
    except (OSError, TimeoutError, ConnectionError) as exc:
        return not isinstance(exc, FileNotFoundError)  # a missing input does not appear by retrying
    except Exception:
        return False
    return False
