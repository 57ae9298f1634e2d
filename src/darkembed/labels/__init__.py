"""Host labels: acknowledged-scanner lists, packet fingerprints and honeypot rules, merged by precedence.

Entry points:
    * `load_scanner_lists(cfg, day)` / `load_scanner_list(path, format, ...)`: scanner lists with load reports.
    * `read_cowrie(paths)`: Cowrie events and a report.
    * `label_day(packets, day, scanner_lists, cowrie_events, cfg, external=None)`: the `labels` rows of one day.
"""

from darkembed.labels.assign import EXTERNAL_KINDS, label_day, labels_table
from darkembed.labels.cowrie import COWRIE_EVENTS, CowrieLogError, CowrieReport, honeypot_labels, read_cowrie
from darkembed.labels.fingerprints import host_fingerprints
from darkembed.labels.scanner_index import ScannerIndex, ScannerMatch
from darkembed.labels.scanner_list import LoadReport, Problem, ScannerList, ScannerListError
from darkembed.labels.scanners import load_scanner_list, load_scanner_lists, org_class

__all__ = [
    "COWRIE_EVENTS",
    "EXTERNAL_KINDS",
    "CowrieLogError",
    "CowrieReport",
    "LoadReport",
    "Problem",
    "ScannerIndex",
    "ScannerList",
    "ScannerListError",
    "ScannerMatch",
    "honeypot_labels",
    "host_fingerprints",
    "label_day",
    "labels_table",
    "load_scanner_list",
    "load_scanner_lists",
    "org_class",
    "read_cowrie",
]
