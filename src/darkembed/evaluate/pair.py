"""One provider-customer pair on one day: every [TNSM] setting, clustering and knowledge gain (docs/method.md 5.3-5.7).

Pure computation over `NetworkDay`s; the adaptation stage (`darkembed.stages.adapt`) reads the partitions and
writes what this returns.

* Classification settings on the same consistent folds: `no_adaptation`, `transfer` (canonical transfer
  embeddings, when given), `align/<kind>` for each configured aligner, extra provider-space embeddings (e.g.
  `gnn-inductive`), and the `independent` reference.
* Clustering of the customer's hosts (HDBSCAN) in three spaces: its own embeddings (`reference`), the transferred
  ones (`transfer`) and its own mapped by a non-linear aligner fit on all anchors (`align`); Table V metrics and the
  Table VI knowledge gain with two label sources: the customer's own labels and the provider's. That aligner is
  kept in `PairResult.aligners`, so the provider's bundle ships it without a second fit (`bundle_aligner`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from darkembed.adapt.aligners import Aligner
from darkembed.adapt.anchors import find_anchors
from darkembed.cluster import Clustering, cluster_from_config, cluster_metrics, knowledge_gain
from darkembed.config import Config
from darkembed.evaluate.classifiers import DNNClassifier
from darkembed.evaluate.folds import Folds
from darkembed.evaluate.protocol import (
    NetworkDay,
    ProtocolResult,
    align,
    fit_aligner,
    independent,
    make_folds,
    no_adaptation,
    train_classifiers,
)
from darkembed.evaluate.protocol import transfer as transfer_setting

log = logging.getLogger(__name__)


@dataclass
class PairResult:
    """Everything `evaluate_pair` computed."""

    settings: dict[str, ProtocolResult]
    anchors: int
    clusterings: dict[str, Clustering] = field(default_factory=dict)
    cluster_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    knowledge: dict[str, pl.DataFrame] = field(default_factory=dict)
    spaces: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    folds: Folds | None = field(default=None, repr=False)
    classifiers: list[DNNClassifier] = field(default_factory=list, repr=False)
    aligners: dict[str, Aligner] = field(default_factory=dict, repr=False)

    def summary(self) -> pl.DataFrame:
        """Per setting and class: precision/recall/F1 mean and std over the folds (`macro` rows included)."""
        frames = [r.summary().with_columns(pl.lit(s).alias("setting")) for s, r in self.settings.items()]
        return pl.concat(frames, how="diagonal_relaxed").select("setting", pl.exclude("setting"))

    def macro_f1(self) -> dict[str, float]:
        return {s: r.macro_f1 for s, r in self.settings.items()}

    def open_set(self) -> dict[str, dict[str, float]]:
        """Per setting: coverage, answered precision, labelled coverage and open-set F1 (empty without
        abstention); see `ProtocolResult.open_set`."""
        return {s: o for s, r in self.settings.items() if (o := r.open_set())}

    def predictions(self) -> pl.DataFrame:
        frames = [r.predictions().with_columns(pl.lit(s).alias("setting")) for s, r in self.settings.items()]
        return pl.concat(frames, how="diagonal_relaxed")


def evaluate_pair(
    provider: NetworkDay,
    customer: NetworkDay,
    cfg: Config,
    *,
    customer_own_labels: np.ndarray | None = None,
    transferred: NetworkDay | None = None,
    extra: dict[str, NetworkDay] | None = None,
    cluster: bool = True,
    device: str | None = None,
    anchor_ips: np.ndarray | None = None,
) -> PairResult:
    """Run every setting of the pair's day.

    Args:
        provider: the provider's embeddings and labels.
        customer: the customer's own embeddings with the ground truth used for scoring.
        cfg: configuration (`evaluate`, `adapt`, `cluster` sections).
        customer_own_labels: what the customer knows by itself (n_c,), for the knowledge-gain table; defaults to
            `customer.labels`.
        transferred: the customer's hosts embedded by canonical transfer (provider space).
        extra: more provider-space embeddings of the customer's hosts by setting name (e.g. `gnn-inductive`).
        cluster: also run the clustering analysis.
        device: torch device for the DNNs.
        anchor_ips: the anchors the parties agreed on (`darkembed.adapt.psi.discover`); None = the intersection.
    """
    ev, ad = cfg.evaluate, cfg.adapt
    t0 = time.perf_counter()
    folds = make_folds(provider, customer, ev)
    clfs = train_classifiers(provider, folds, ev, device=device)
    seconds = {"classifiers": time.perf_counter() - t0}
    settings: dict[str, ProtocolResult] = {}
    settings["no_adaptation"] = no_adaptation(provider, customer, folds, ev, classifiers=clfs)
    if transferred is not None:
        settings["transfer"] = transfer_setting(
            provider, _reorder(transferred, customer), folds, ev, classifiers=clfs
        )
    for kind in ad.aligners:
        t = time.perf_counter()
        settings[f"align/{kind}"] = align(
            provider, customer, folds, kind, ev, ad, classifiers=clfs, anchor_ips=anchor_ips, device=device
        )
        seconds[f"align/{kind}"] = time.perf_counter() - t
    for name, nd in (extra or {}).items():
        settings[name] = no_adaptation(
            provider, _reorder(nd, customer), folds, ev, classifiers=clfs, setting=name
        )
    t = time.perf_counter()
    settings["independent"] = independent(customer, folds, ev, device=device)
    seconds["independent"] = time.perf_counter() - t
    anchors = find_anchors(provider.ips, customer.ips)
    result = PairResult(settings=settings, anchors=int(anchors.ips.size), seconds=seconds, folds=folds,
                        classifiers=clfs)  # fmt: skip
    if cluster and customer.ips.size >= 2 * cfg.cluster.min_cluster_size:
        _cluster(result, provider, customer, cfg, customer_own_labels, transferred, device, anchor_ips)
    return result


#: Hosts the silhouette is computed over at most (a random sample above): exact, it is quadratic in the hosts.
SILHOUETTE_SAMPLE = 10_000


def bundle_aligner_kind(cfg: Config) -> str:
    """The kind of the aligner fit on every anchor of the day (the `align` clustering space and the provider's
    bundle): `nonlinear` when configured, else the first configured kind; Procrustes when `adapt.aligners` is
    empty (no `align/<kind>` setting is scored then, but the clustering and the bundle still need an aligner)."""
    return "nonlinear" if "nonlinear" in cfg.adapt.aligners else (cfg.adapt.aligners or ["procrustes"])[0]


def bundle_aligner(
    result: PairResult,
    provider: NetworkDay,
    customer: NetworkDay,
    cfg: Config,
    *,
    anchor_ips: np.ndarray | None = None,
    device: str | None = None,
) -> tuple[str, Aligner]:
    """The aligner of kind `bundle_aligner_kind` fit on every anchor of the day (or on `anchor_ips`), with its
    kind: the one `result` holds (the clustering's), else fit now and kept in `result.aligners`, so it is fit once
    per pair-day whoever asks first."""
    kind = bundle_aligner_kind(cfg)
    if kind not in result.aligners:
        result.aligners[kind], _ = fit_aligner(provider, customer, kind, cfg.adapt, seed=cfg.evaluate.seed,
                                               anchor_ips=anchor_ips, device=device)  # fmt: skip
    return kind, result.aligners[kind]


def _reorder(nd: NetworkDay, like: NetworkDay) -> NetworkDay:
    """`nd` restricted and ordered to the hosts of `like` (hosts `nd` lacks keep `like`'s vectors: none expected)."""
    pos = {int(ip): i for i, ip in enumerate(nd.ips)}
    idx = np.array([pos.get(int(ip), -1) for ip in like.ips], dtype=np.int64)
    missing = idx < 0
    if missing.any():
        log.warning(
            "%d customer hosts lack a provider-space embedding; they keep their own", int(missing.sum())
        )
    X = np.where(missing[:, None], like.X, nd.X[np.maximum(idx, 0)]) if nd.dim == like.dim else nd.X[idx]
    return NetworkDay(like.ips, X.astype(np.float32), like.labels, like.activity)


def _cluster(
    result: PairResult,
    provider: NetworkDay,
    customer: NetworkDay,
    cfg: Config,
    own: np.ndarray | None,
    transferred: NetworkDay | None,
    device: str | None,
    anchor_ips: np.ndarray | None = None,
) -> None:
    spaces = {"reference": customer.X}
    if transferred is not None:
        spaces["transfer"] = _reorder(transferred, customer).X
    t = time.perf_counter()
    _, aligner = bundle_aligner(result, provider, customer, cfg, anchor_ips=anchor_ips, device=device)
    spaces["align"] = aligner.transform(customer.X)
    result.seconds["fit_aligner"] = time.perf_counter() - t
    own_labels = customer.labels if own is None else np.asarray(own, dtype=object)
    for name, X in spaces.items():
        cl = cluster_from_config(X, cfg.cluster, seed=cfg.evaluate.seed)
        result.clusterings[name] = cl
        result.spaces[name] = X
        metrics = cluster_metrics(X, cl.labels, customer.labels, silhouette_sample=SILHOUETTE_SAMPLE,
                                  seed=cfg.evaluate.seed)  # fmt: skip
        metrics["seconds"] = cl.seconds
        result.cluster_metrics[name] = metrics
        table, _ = knowledge_gain(
            cl.labels, {"own": own_labels, "provider": customer.labels}, share=cfg.cluster.explained_share
        )
        result.knowledge[name] = table


def summary_markdown(result: PairResult, title: str) -> str:
    """A markdown report of the pair's day: macro scores per setting, per-class F1, clustering, knowledge gain."""
    lines = [f"# {title}", "", f"anchors (hosts active in both networks): {result.anchors}", ""]
    summ = result.summary()
    macro = summ.filter(pl.col("class") == "macro")
    lines += [
        "## Macro averages over the 5 test folds",
        "",
        "| setting | P | R | F1 (mean ± std) | open-set F1 | coverage | answered precision | held-out anchor "
        "cosine | held-out anchor P@10 | s/fold aligner |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in macro.iter_rows(named=True):
        aligner_s = r.get("aligner_seconds") if r["setting"].startswith("align/") else None
        lines.append(
            f"| {r['setting']} | {r['precision_mean']:.2f} | {r['recall_mean']:.2f} | "
            f"{r['f1_mean']:.2f} ± {_nz(r['f1_std']):.2f} | {_fmt(r.get('open_f1'))} | {_fmt(r.get('coverage'))} | "
            f"{_fmt(r.get('answered_precision'))} | {_fmt(r.get('anchor_cosine'))} | "
            f"{_fmt(r.get('anchor_p10'))} | {_fmt(aligner_s)} |"
        )
    lines += ["", "Held-out anchors: the test fold's anchors, never seen by the aligner; cosine to their provider "
              "vector, and P@10: the share whose provider vector is among the 10 nearest to the aligned one.", "",
              "F1 is the closed-world score (every host gets a provider class, as in the papers); the open-set "
              "answers say `unknown` below a per-class confidence threshold set on the validation hosts "
              "(docs/open-set.md): coverage is the share of the tested hosts answered, answered precision the "
              "share of right answers among the answered labelled hosts, open-set F1 the macro F1 of the answers "
              "(an `unknown` answer is a miss)."]  # fmt: skip
    per = summ.filter(pl.col("class") != "macro").pivot(on="setting", index="class", values="f1_mean")
    cols = [c for c in per.columns if c != "class"]
    lines += [
        "",
        "## Per-class F1",
        "",
        "| class | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for r in per.sort("class").iter_rows(named=True):
        lines.append(f"| {r['class']} | " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    if result.cluster_metrics:
        lines += ["", "## Clustering of the customer's hosts (HDBSCAN)", ""]
        names = list(result.cluster_metrics)
        keys = ["clusters", "noise_share", "homogeneity", "silhouette_mean", "silhouette_std"]
        lines += ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for k in keys:
            lines.append(
                f"| {k} | " + " | ".join(_fmt(result.cluster_metrics[n].get(k)) for n in names) + " |"
            )
        for name, table in result.knowledge.items():
            lines += [
                "",
                f"### Knowledge gain, {name}",
                "",
                "| source | clusters | hosts | extended |",
                "|---|---|---|---|",
            ]
            for r in table.iter_rows(named=True):
                lines.append(f"| {r['source']} | {r['clusters']} | {r['hosts']} | {r.get('extended', 0)} |")
    return "\n".join(lines) + "\n"


SWEEP_HEADING = "## Impact of the anchors (macro F1, mean ± std over samples x folds)"


def sweep_markdown(curves: dict[str, pl.DataFrame], heading: bool = True) -> str:
    """The anchor-fraction curves (`protocol.sweep_curve` per setting) as a markdown table: macro F1 mean ± std
    over repeats x folds per fraction of anchors kept (under `SWEEP_HEADING` when `heading`)."""
    if not curves:
        return ""
    fractions = sorted({f for c in curves.values() for f in c["fraction"].to_list()})
    names = list(curves)
    lines = (["", SWEEP_HEADING] if heading else []) + [
        "", "| anchors kept | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]  # fmt: skip
    for f in fractions:
        cells = []
        for n in names:
            row = curves[n].filter(pl.col("fraction") == f)
            cells.append(
                "-"
                if row.height == 0
                else f"{row['f1_mean'][0]:.2f} ± {_nz(row['f1_std'][0]):.2f} ({row['anchors_mean'][0]:.0f})"
            )
        lines.append(f"| {100 * f:.0f} % | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "(in brackets: anchors used on average; an aligner uses only the anchors of the training folds)"
    )
    return "\n".join(lines) + "\n"


def _nz(x: float | None) -> float:
    return 0.0 if x is None or x != x else float(x)


def _fmt(x: object) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "-" if x != x else f"{x:.2f}"
    return str(x)
