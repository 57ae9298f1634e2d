"""Packet ingest: captures (libpcap, pcapng, gzip) and legacy text traces into the `packets` dataset."""

from darkembed.ingest.capture import CaptureChecks, CaptureError, IngestReport, empty_packets, read_capture
from darkembed.ingest.files import (
    expand_inputs,
    ingest_day,
    ingest_file,
    ingest_many,
    read_packets,
    read_source,
)
from darkembed.ingest.legacy import read_legacy

__all__ = [
    "CaptureChecks",
    "CaptureError",
    "IngestReport",
    "empty_packets",
    "expand_inputs",
    "ingest_day",
    "ingest_file",
    "ingest_many",
    "read_capture",
    "read_legacy",
    "read_packets",
    "read_source",
]
