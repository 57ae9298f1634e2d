"""IPv4 text -> uint32 at the edges: scanner-list and Cowrie log parsing.

Inside darkembed an IPv4 address is a `uint32` (host byte order: `1.2.3.4` is `0x01020304`); these helpers are
the only places that see dotted strings.
"""

from __future__ import annotations

import numpy as np
import polars as pl

_MASK32 = 0xFFFFFFFF


def parse_ipv4(text: str) -> int:
    """Parse a dotted-quad IPv4 address into its integer value.

    Raises:
        ValueError: `text` is not four decimal octets in 0..255.
    """
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError(f"not an IPv4 address: {text!r}")
    value = 0
    for p in parts:
        if not (p.isascii() and p.isdigit()) or len(p) > 3 or int(p) > 255:
            raise ValueError(f"not an IPv4 address: {text!r}")
        value = (value << 8) | int(p)
    return value


def parse_prefix(text: str) -> tuple[int, int]:
    """Parse `a.b.c.d` or `a.b.c.d/len` into `(network address, prefix length)`.

    Host bits set below the prefix length are cleared (as `ipset` does): `10.0.0.7/24` is `10.0.0.0/24`.

    Raises:
        ValueError: not an IPv4 address or prefix.
    """
    addr, sep, plen_text = text.partition("/")
    value = parse_ipv4(addr)
    plen = 32
    if sep:
        if not (plen_text.isascii() and plen_text.isdigit()) or int(plen_text) > 32:
            raise ValueError(f"bad prefix length in {text!r}")
        plen = int(plen_text)
    mask = (_MASK32 << (32 - plen)) & _MASK32
    return value & mask, plen


def str_to_ipv4(values: pl.Series) -> pl.Series:
    """Dotted-quad strings to uint32 (vectorised); anything that is not an IPv4 address becomes null.

    IPv4-mapped IPv6 text (`::ffff:1.2.3.4`) is read as its IPv4 address.
    """
    s = values.cast(pl.String).str.strip_chars().str.replace(r"^::ffff:", "")
    ok = s.str.contains(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
    octets = s.str.split(".").list.eval(pl.element().cast(pl.Int64, strict=False)).fill_null([])
    frame = pl.DataFrame({"ok": ok, "o": octets}).with_columns(
        [pl.col("o").list.get(i, null_on_oob=True).alias(f"o{i}") for i in range(4)]
    )
    in_range = pl.all_horizontal([(pl.col(f"o{i}") <= 255) for i in range(4)])
    value = (pl.col("o0") * 16777216 + pl.col("o1") * 65536 + pl.col("o2") * 256 + pl.col("o3")).cast(
        pl.UInt32
    )
    return frame.select(
        pl.when(pl.col("ok") & in_range).then(value).otherwise(None).alias(values.name)
    ).to_series()


def as_uint32(ips: np.ndarray | pl.Series | list[int]) -> np.ndarray:
    """A contiguous `uint32` numpy array of addresses (copy only when needed)."""
    if isinstance(ips, pl.Series):
        ips = ips.cast(pl.UInt32).to_numpy()
    return np.ascontiguousarray(ips, dtype=np.uint32)
