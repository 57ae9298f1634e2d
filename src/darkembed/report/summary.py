"""The summary tables the demo (and `darkembed report`) print: what each network saw and what the methods got.

Reads: the `packets`, `labels`, `graph` and `embeddings` partitions of the data root.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from rich.table import Table

from darkembed.config import Config
from darkembed.layout import Layout
from darkembed.store import is_complete, read_manifest


def network_day_counts(cfg: Config, network: str, day: dt.date) -> dict:
    """Packets, active hosts and labelled active hosts per class of one network-day."""
    lay = Layout(cfg.data_path)
    out: dict = {"network": network, "day": day.isoformat()}
    if is_complete(lay.packets(network, day)):
        out["packets"] = read_manifest(lay.packets(network, day))["rows"]
    g = lay.graph(network, day)
    lab = lay.labels(network, day)
    if is_complete(g) and is_complete(lab):
        hosts = pl.read_parquet(g / "hosts.parquet", columns=["src_ip"])
        labels = pl.read_parquet(lab / "labels.parquet", columns=["src_ip", "label"])
        active = hosts.join(labels, on="src_ip", how="left").with_columns(
            pl.col("label").fill_null("unknown")
        )
        out["active_hosts"] = active.height
        out["classes"] = dict(active.group_by("label").len().sort("label").iter_rows())
    return out


def demo_summary(cfg: Config, day: dt.date) -> list:
    """Rich tables summarising the pipeline's outputs on `day` (with the transfer table: the settings' legend and
    where each pair's summary and figures are), to print in order."""
    lay = Layout(cfg.data_path)
    t = Table(
        title=f"networks on {day}: active hosts (>= {cfg.activity.min_packets} packets) and their labels"
    )
    for col in ("network", "packets", "active hosts", "labelled", "classes (active hosts)", "embeddings"):
        t.add_column(col, overflow="fold")
    for net in cfg.networks:
        c = network_day_counts(cfg, net.name, day)
        classes = c.get("classes", {})
        labelled = sum(v for k, v in classes.items() if k != "unknown")
        emb = []
        for m in cfg.embed.methods:
            p = lay.embeddings(m, net.name, day)
            if is_complete(p):
                emb.append(f"{m}: {read_manifest(p)['rows']}")
        t.add_row(
            net.name,
            f"{c.get('packets', 0):,}",
            str(c.get("active_hosts", "-")),
            str(labelled),
            ", ".join(
                f"{k} {v}" for k, v in sorted(classes.items(), key=lambda kv: -kv[1]) if k != "unknown"
            ),
            ", ".join(emb) or "-",
        )
    tables = [t]
    from darkembed.stages.knn import knn_scores

    k = Table(title=f"leave-one-out 3-NN macro F1 on {day} (labelled active hosts)")
    k.add_column("network")
    for m in cfg.embed.methods:
        k.add_column(m, justify="right")
    for net in cfg.networks:
        cells = []
        for m in cfg.embed.methods:
            s = knn_scores(cfg, m, net.name, day)
            cells.append("-" if s is None else f"{s.macro['f1']:.2f}")
        k.add_row(net.name, *cells)
    tables.append(k)
    for m in cfg.adapt.methods:
        tables += _transfer_tables(cfg, lay, day, m)
    return tables


#: What each transfer setting does, printed under the table that names them.
SETTING_LEGEND = {
    "no_adaptation": "the provider's classifier on the customer's embeddings as they are (the floor)",
    "transfer": "canonical transfer: the customer's i-DarkVec starts from the provider's anchor vectors",
    "align/linear": "a linear map fit on the anchors takes the customer's embeddings to the provider's space",
    "align/nonlinear": "the same with a non-linear (sigmoid) network",
    "align/procrustes": "the same with an orthogonal rotation (Procrustes)",
    "gnn-inductive": "the provider's GNN embeds the customer's graph",
    "independent": "the customer's own classifier on its own labels (the reference, needs labels)",
}
#: The clustering spaces of the knowledge gain.
SPACE_LEGEND = {
    "reference": "the customer's own embedding space",
    "transfer": "the space after canonical transfer",
    "align": "the provider's space after alignment",
}


def _transfer_tables(cfg: Config, lay: Layout, day: dt.date, method: str) -> list:
    """The transfer table of one embedding method (a row per setting with its macro F1 for each pair, then a row
    per clustering space with the customer hosts it explains), its legend, and where each pair's summary and
    figures are."""
    from rich.text import Text

    settings: list[str] = []
    spaces: list[str] = []
    rows = []
    for pair in cfg.pairs:
        part = lay.partition("results", day, f"{pair.provider}~{pair.customer}", method)
        if not is_complete(part):
            continue
        summ = pl.read_parquet(part / "summary.parquet").filter(pl.col("class") == "macro")
        f1 = dict(zip(summ["setting"].to_list(), summ["f1_mean"].to_list(), strict=True))
        cov = dict(zip(summ["setting"].to_list(), summ["coverage"].to_list(), strict=True)) if (
            "coverage" in summ.columns) else {}  # fmt: skip
        settings += [s for s in f1 if s not in settings]
        explained = {}
        for space in SPACE_LEGEND:
            kp = part / f"knowledge_{space}.parquet"
            if kp.is_file():
                kg = pl.read_parquet(kp)
                hosts, total = (
                    int(kg.filter(pl.col("source") != "unexplained")["hosts"].sum()),
                    int(kg["hosts"].sum()),
                )
                explained[space] = f"{hosts}/{total} ({hosts / total:.0%})" if total else "0/0"
                spaces += [space] if space not in spaces else []
        rows.append((f"{pair.provider} -> {pair.customer}", f1, cov, explained, part))
    if not rows:
        return []
    # One row per setting and one column per pair: the table stays narrow enough for a terminal whatever the
    # number of settings (a column per setting squeezed the pair names out at 80-160 columns).
    a = Table(title=f"transfer to the customer on {day} ({method}): 5-fold macro F1 per setting (closed world; in "
                    "brackets the coverage of the open-set answers), and customer hosts in clusters a label explains, "
                    "per clustering space")  # fmt: skip
    a.add_column("setting", no_wrap=True)
    for name, *_ in rows:
        a.add_column(name, justify="right", no_wrap=True)
    for s in settings:
        a.add_row(s, *[_f1_cell(f1, cov, s) for _, f1, cov, _, _ in rows])
    for space in spaces:
        a.add_row(f"explained ({space})", *[explained.get(space, "-") for _, _, _, explained, _ in rows])
    legend = Text()
    for s in settings:
        legend.append(f"  {s}", style="bold").append(f": {SETTING_LEGEND.get(s, '')}\n")
    for space in spaces:
        legend.append(f"  explained ({space})", style="bold").append(
            f": HDBSCAN clusters in {SPACE_LEGEND[space]}\n"
        )
    legend.append("per pair: the summary (per-class scores, clusters, knowledge gain) and its figures:\n")
    for name, _, _, _, part in rows:
        legend.append(f"  {name}: {part / 'summary.md'}\n  {' ' * len(name)}  {part / 'figures'}/\n")
    return [a, legend]


def _f1_cell(f1: dict, coverage: dict, setting: str) -> str:
    """`0.93 (0.71)`: closed-world macro F1 and, when the run has open-set answers, their coverage."""
    if setting not in f1:
        return "-"
    c = coverage.get(setting)
    return f"{f1[setting]:.2f}" + ("" if c is None or c != c else f" ({c:.2f})")
