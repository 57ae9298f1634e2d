"""Whether a labels partition is current: the inputs it would be made from now, Cowrie logs included."""

import datetime as dt
from pathlib import Path

from darkembed.config import load_config
from darkembed.layout import Layout
from darkembed.lineage import label_inputs, partition_stale
from darkembed.schemas import PACKETS
from darkembed.stages.labels import label_day
from darkembed.store import write_partition

DAY = dt.date(2023, 1, 1)


def _world(root: Path) -> None:
    """An empty packets partition of darknet-a and one acknowledged scanner: enough to label a day."""
    scanners = root / "var" / "world" / "scanners"
    scanners.mkdir(parents=True)
    (scanners / "censys_v4.txt").write_text("198.51.100.7\n")


def test_labels_become_stale_when_the_days_cowrie_log_appears(tracking_env):
    _world(tracking_env)
    cfg = load_config()
    with write_partition(Layout(cfg.data_path).packets("darknet-a", DAY), dataset="packets") as w:
        w.write_table("part-0.parquet", PACKETS.empty_table(), PACKETS)
    res = label_day(cfg, "darknet-a", DAY)
    assert res["cowrie_files"] == 0 and res["cowrie_missing"]
    assert partition_stale(cfg, "labels", "darknet-a", DAY) is None
    # the sensor's log of that day is copied in late: the labels were made without it
    log = tracking_env / "var" / "world" / "honeypot" / "cowrie" / "cowrie.json.2023-01-01"
    log.parent.mkdir(parents=True)
    log.write_text("")
    why = partition_stale(cfg, "labels", "darknet-a", DAY)
    assert why is not None and "new input" in why and str(log.relative_to(tracking_env)) in why
    assert Path(str(log.relative_to(tracking_env))) in label_inputs(cfg, "darknet-a", DAY)
    label_day(cfg, "darknet-a", DAY)
    assert partition_stale(cfg, "labels", "darknet-a", DAY) is None
    # a rotated log gzipped after the fact replaces the plain one: a change again
    log.unlink()
    log.with_name(log.name + ".gz").write_bytes(b"")
    assert "no longer expected" in partition_stale(cfg, "labels", "darknet-a", DAY)
