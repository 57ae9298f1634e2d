"""The traffic simulator: a world of darknets and honeypots observing one Internet population.

`simulate` writes hourly libpcap captures per network and day, Cowrie JSON logs for honeypots, published
scanner lists and the answer key (see `darkembed.simulate.world`); `check_world` validates a written world
against the configured targets (see `darkembed.simulate.check`). Reads nothing but the bundled scanner address
blocks (`blocks/`, see its PROVENANCE.md).
"""

from darkembed.schemas import TRUTH
from darkembed.simulate.world import SimulateResult, simulate

__all__ = ["TRUTH", "SimulateResult", "simulate"]
