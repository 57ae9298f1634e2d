"""Reports: summary tables and figures for analysts.

Matplotlib is not thread-safe (its text and mathtext machinery share state), and flows render figures from
task threads: every figure is drawn under `FIGURE_LOCK`.
"""

import threading

FIGURE_LOCK = threading.Lock()
