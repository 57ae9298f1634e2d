"""The adaptation stage: one provider-customer pair on one day (docs/method.md 5.3-5.7).

Reads the pair's embeddings and labels, the provider's checkpoint and the customer's corpus (canonical transfer,
i-DarkVec) or graphs (the inductive setting of the GNNs with node features); evaluates every [TNSM] setting with
`darkembed.evaluate.pair.evaluate_pair`; writes `<root>/results/method=<m>/network=<provider>~<customer>/day=<d>/`
with the per-setting scores (`summary.parquet`), per-host predictions, cluster assignments, the knowledge-gain
tables, figures, a markdown summary, the largest clusters of unknown hosts (the analyst's view), and the exchange
bundles a provider ships (classifier and aligner weights, anchor embeddings: safetensors + manifest, signed,
nothing executable).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import numpy as np
import polars as pl

from darkembed.adapt.anchors import find_anchors
from darkembed.adapt.exchange import pipeline_signing_key, save_aligner, save_anchors
from darkembed.adapt.psi import discover_from_config, save_anchor_positions
from darkembed.config import Config, parse_gnn_method
from darkembed.embed.w2v import IDarkVec, seed_from_provider
from darkembed.evaluate.classifier_bundle import save_classifier
from darkembed.evaluate.classifiers import DNNClassifier
from darkembed.evaluate.metrics import confusion
from darkembed.evaluate.pair import (
    PairResult,
    bundle_aligner,
    evaluate_pair,
    summary_markdown,
    sweep_markdown,
)
from darkembed.evaluate.protocol import NetworkDay, anchor_sweep, sweep_curve
from darkembed.layout import Layout
from darkembed.report.clusters import cluster_activity_figures, cluster_profiles, noise_reassigned_figure
from darkembed.report.figures import anchor_curve, confusion_plot, f1_bars, tsne_embedding, tsne_scatter
from darkembed.schemas import embeddings_table
from darkembed.stages.read import CORPUS_FILE, day_graphs, load_network_day, packets_lazy, pair_name
from darkembed.store import PartitionWriter, write_partition
from darkembed.torchutil import set_default_device

log = logging.getLogger(__name__)


class AdaptResult(TypedDict):
    """What `adapt_pair` did: the pair-day's partition, scores, cluster metrics, timings and report files."""

    pair: str
    #: the `network` of the results partition (`<provider>~<customer>`, the same as `pair`)
    network: str
    provider: str
    customer: str
    method: str
    day: str
    partition: str
    anchors: int
    provider_hosts: int
    customer_hosts: int
    #: macro F1 per setting
    macro_f1: dict[str, float]
    #: per setting: coverage, answered precision, labelled coverage, open-set F1 (`PairResult.open_set`)
    open_set: dict[str, dict[str, float]]
    #: `<space>.<metric>` of the clusterings
    clusters: dict[str, float]
    seconds: dict[str, float]
    figures: list[str]
    summary_md: str


@dataclass
class PairDay:
    """One pair-day as the two parties hold it, ready for `evaluate_pair`.

    Attributes:
        provider: the provider's embeddings and labels.
        customer: the customer's embeddings (its own model's, or with `adapt.customer_history: day` a model of
            the day alone) with the ground truth used for scoring.
        own: row for row, the labels the customer knows by itself.
        provider_anchors: the anchors as the provider found them (`adapt.anchor_discovery`).
        agreed: the anchors both parties agreed on, sorted; None with plain discovery (the intersection).
        transferred: the customer's hosts embedded by canonical transfer (i-DarkVec only).
        transfer_fn: canonical transfer from a given set of anchors (the anchor sweep's `transfer` curve).
        extra: more provider-space embeddings of the customer's hosts by setting name (`gnn-inductive`).
    """

    provider: NetworkDay
    customer: NetworkDay
    own: np.ndarray
    provider_anchors: np.ndarray
    agreed: np.ndarray | None
    transferred: NetworkDay | None = None
    transfer_fn: Callable[[np.ndarray], NetworkDay] | None = None
    extra: dict[str, NetworkDay] = field(default_factory=dict)


def draw_tsne(config: Config, last_day: bool) -> bool:
    """Whether the adapt stage draws its t-SNE maps (`report.tsne`): `always`, `never`, or on the `last` day of a
    backfill (a single nightly or transfer run is its own last day)."""
    return config.report.tsne == "always" or (config.report.tsne == "last" and last_day)


def adapt_pair(
    config: Config,
    provider: str,
    customer: str,
    day: dt.date,
    method: str = "idarkvec",
    last_day: bool = True,
) -> AdaptResult:
    """Every [TNSM] setting for the pair's day, clustering, figures and the exchange bundles.

    Args:
        config: the configuration (`adapt`, `evaluate`, `cluster`, `report`, `exchange` sections).
        provider: the network whose labels are transferred.
        customer: the network that receives them.
        day: the day evaluated.
        method: the embedding method of both networks.
        last_day: whether this is the last day of a backfill (the t-SNE maps are drawn there with `report.tsne:
            last`).

    Raises:
        PartitionMissingError: an embeddings partition of the pair's day is not complete.
    """
    set_default_device(config.compute.device)
    lay = Layout(config.data_path)
    pair = read_pair(config, provider, customer, day, method)
    result = evaluate_pair(pair.provider, pair.customer, config, customer_own_labels=pair.own,
                           transferred=pair.transferred, extra=pair.extra, anchor_ips=pair.agreed)  # fmt: skip
    sweep = _anchor_sweep(config, pair, result)
    part = lay.partition("results", day, pair_name(provider, customer), method)
    inputs = [lay.partition(s, day, n, m) for n in (provider, customer)
              for s, m in (("embeddings", method), ("models", method), ("labels", None), ("corpus", None))]  # fmt: skip
    if pair.customer.activity is not None:  # the open-set answers' activity gate read the customer's graph
        inputs.append(lay.graph(customer, day))
    with write_partition(
        part, dataset="results", config_hash=config.stage_hash("results"), inputs=inputs
    ) as w:
        _write_tables(w, result, pair)
        figs = w.path("figures")
        figs.mkdir()
        title = f"{provider} -> {customer}, {day}, {method}"
        _write_summary(w, figs, result, sweep, title)
        coords = _write_figures(config, figs, result, pair.customer, title, customer, day, last_day)
        _analyst_view(config, customer, day, pair.customer, result, w, figs, coords)
        bundles = w.path("bundles")
        bundles.mkdir()
        _write_bundles(config, bundles, pair, result, pair_name(provider, customer), day, method)
    return {
        "pair": pair_name(provider, customer),
        "network": pair_name(provider, customer),
        "provider": provider,
        "customer": customer,
        "method": method,
        "day": day.isoformat(),
        "partition": str(part),
        "anchors": result.anchors,
        "provider_hosts": int(pair.provider.ips.size),
        "customer_hosts": int(pair.customer.ips.size),
        "macro_f1": result.macro_f1(),
        "open_set": result.open_set(),
        "clusters": {f"{name}.{k}": v for name, m in result.cluster_metrics.items() for k, v in m.items()},
        "seconds": result.seconds,
        "figures": sorted(str(p) for p in (part / "figures").glob("*.png")),
        "summary_md": str(part / "summary.md"),
    }


def read_pair(config: Config, provider: str, customer: str, day: dt.date, method: str) -> PairDay:
    """The pair-day's embeddings and labels, its anchors as the parties find them, and the customer's hosts in
    the provider's space where the method allows it (canonical transfer for i-DarkVec, the provider's model on
    the customer's graphs for a GNN with node features).

    Raises:
        PartitionMissingError: an embeddings partition of the pair's day is not complete.
        ValueError: `method` is neither i-DarkVec nor a GNN method.
    """
    lay = Layout(config.data_path)
    prov, _ = load_network_day(config, method, provider, day)
    cust, own = load_network_day(config, method, customer, day, activity=True)
    corpus = lay.corpus(customer, day) / CORPUS_FILE
    if config.adapt.customer_history == "day":  # [TNSM] Table II: the customer owns this one day only
        cust, own = _customer_day_only(config, corpus, cust, own)
    # The anchors as the two parties would find them (`adapt.anchor_discovery`): the same set in every mode.
    p_anchors, c_anchors = discover_from_config(prov.ips, cust.ips, config.adapt)
    agreed = None if config.adapt.anchor_discovery == "plain" else np.sort(c_anchors)
    pair = PairDay(prov, cust, own, p_anchors, agreed)
    if method == "idarkvec":
        pair.transfer_fn = canonical_transfer(config, lay.models(method, provider, day), corpus, cust)
        pair.transferred = pair.transfer_fn(np.sort(c_anchors))
    else:
        pair.extra = _inductive(config, lay.models(method, provider, day), customer, day, method)
    return pair


def _customer_day_only(
    config: Config, corpus: Path, cust: NetworkDay, own: np.ndarray
) -> tuple[NetworkDay, np.ndarray]:
    """The customer's hosts embedded by an i-DarkVec trained from scratch on the day's corpus, and their own
    labels."""
    fresh = IDarkVec(config.w2v)
    fresh.update(corpus)
    c_ips, c_X = fresh.embed(cust.ips)
    keep = np.isin(cust.ips, c_ips)  # every active host is in the day's corpus: normally all of them
    activity = None if cust.activity is None else cust.activity[keep]
    return NetworkDay.of(c_ips, c_X, cust.labels[keep], activity), own[keep]


def canonical_transfer(
    config: Config, checkpoint: Path, corpus: Path, cust: NetworkDay
) -> Callable[[np.ndarray], NetworkDay]:
    """Canonical transfer from a set of anchors: the provider's i-DarkVec checkpoint seeded with the anchors'
    vectors and trained on the customer's corpus embeds the customer's hosts (docs/method.md 3.6)."""
    model = IDarkVec.load(checkpoint, config.w2v)

    def transfer(anchor_ips: np.ndarray) -> NetworkDay:
        seeded, _ = seed_from_provider(model, anchor_ips, corpus, config.w2v)
        t_ips, t_X = seeded.embed(cust.ips)
        return NetworkDay.of(t_ips, t_X, cust.labels[np.isin(cust.ips, t_ips)])

    return transfer


def _inductive(
    config: Config, checkpoint: Path, customer: str, day: dt.date, method: str
) -> dict[str, NetworkDay]:
    """The customer's hosts embedded by the provider's GNN (`gnn-inductive`) when the method uses node features
    (the GCN family is then inductive); nothing otherwise."""
    from darkembed.embed.gnn import INDUCTIVE_METHOD, GnnTrainer, embed_inductive
    from darkembed.stages.embed import gnn_window

    base, features = parse_gnn_method(method)
    if not features:
        return {}
    trainer = GnnTrainer.load(checkpoint, cfg=config.gnn)
    i_ips, i_X = embed_inductive(trainer, day_graphs(config, customer, day, gnn_window(config, base), True))
    return {INDUCTIVE_METHOD: NetworkDay.of(i_ips, i_X, None)}


def _anchor_sweep(config: Config, pair: PairDay, result: PairResult) -> pl.DataFrame | None:
    """The anchor-fraction sweep of each setting in `adapt.sweep` on the pair's folds and classifiers."""
    frames = []
    for kind in config.adapt.sweep:
        if kind == "transfer" and pair.transfer_fn is None:
            log.info("anchor sweep: no canonical transfer for this method, skipped")
            continue
        setting = "transfer" if kind == "transfer" else f"align/{kind}"
        frame = anchor_sweep(pair.provider, pair.customer, result.folds, kind, config.evaluate, config.adapt,
                             classifiers=result.classifiers, transfer_fn=pair.transfer_fn)  # fmt: skip
        frames.append(frame.with_columns(pl.lit(setting).alias("setting")))
    return pl.concat(frames) if frames else None


def _write_tables(w: PartitionWriter, result: PairResult, pair: PairDay) -> None:
    """Scores and predictions per setting, the transfer embeddings, and per clustering space its metrics,
    assignments and knowledge-gain table."""
    cust = pair.customer
    w.write_table("summary.parquet", result.summary().to_arrow())
    w.write_table("predictions.parquet", result.predictions().to_arrow())
    if pair.transferred is not None:
        w.write_table(
            "transfer_embeddings.parquet", embeddings_table(pair.transferred.ips, pair.transferred.X)
        )
    if result.cluster_metrics:
        rows = [{"space": sp, "metric": k, "value": float(v)} for sp, m in result.cluster_metrics.items()
                for k, v in m.items()]  # fmt: skip
        w.write_table("cluster_metrics.parquet", pl.DataFrame(rows).to_arrow())
    for name, cl in result.clusterings.items():
        frame = pl.DataFrame({"src_ip": cust.ips, "cluster": cl.labels, "label": cust.labels.astype(str)})
        w.write_table(f"clusters_{name}.parquet", frame.to_arrow())
        w.write_table(f"knowledge_{name}.parquet", result.knowledge[name].to_arrow())


def _write_summary(
    w: PartitionWriter, figs: Path, result: PairResult, sweep: pl.DataFrame | None, title: str
) -> None:
    """`summary.md`, and the anchor sweep's table and curve."""
    md = summary_markdown(result, title)
    if sweep is not None:
        w.write_table("anchor_sweep.parquet", sweep.to_arrow())
        curves = {s: sweep_curve(g) for (s,), g in sweep.group_by("setting", maintain_order=True)}
        anchor_curve({s: (c["fraction"], c["f1_mean"], c["f1_std"]) for s, c in curves.items()},
                     figs / "anchor_curve.png", title=f"impact of the anchors, {title}")  # fmt: skip
        md += sweep_markdown(curves)
    w.path("summary.md").write_text(md)


def _write_figures(config: Config, figs: Path, result: PairResult, cust: NetworkDay, title: str, customer: str,
                   day: dt.date, last_day: bool) -> np.ndarray | None:  # fmt: skip
    """Per-class F1 by setting, the best setting's confusion matrix and (`draw_tsne`) the t-SNE maps of the
    aligned customer hosts; returns the t-SNE coordinates (None when not drawn)."""
    per = result.summary().filter(pl.col("class") != "macro")
    f1 = {
        s: dict(per.filter(pl.col("setting") == s).select("class", "f1_mean").iter_rows())
        for s in result.settings
    }
    f1_bars(f1, figs / "f1_by_setting.png", title=f"per-class F1, {title}")
    best = max(result.settings, key=lambda s: np.nan_to_num(result.settings[s].macro_f1, nan=-1))
    preds = result.settings[best].predictions()
    counts, rows, cols = confusion(preds["label"].to_numpy(), preds["prediction"].to_numpy())
    if counts.size:
        confusion_plot(counts, rows, cols, figs / "confusion_best.png", title=f"confusion, {best}")
    if "align" not in result.clusterings or not draw_tsne(config, last_day):
        return None
    t = time.perf_counter()
    coords = tsne_embedding(result.spaces["align"], seed=config.evaluate.seed)
    result.seconds["tsne"] = time.perf_counter() - t
    tsne_scatter(coords, cust.labels, figs / "tsne_align_labels.png", legend_title="label",
                 title=f"customer hosts after alignment: labels ({customer}, {day})")  # fmt: skip
    tsne_scatter(coords, result.clusterings["align"].labels, figs / "tsne_align_clusters.png",
                 title=f"customer hosts after alignment: HDBSCAN clusters ({customer}, {day})")  # fmt: skip
    return coords


def _analyst_view(
    config: Config,
    customer: str,
    day: dt.date,
    cust: NetworkDay,
    result: PairResult,
    w: PartitionWriter,
    figs: Path,
    coords: np.ndarray | None,
) -> None:
    """The largest clusters of unknown customer hosts with their port and timing profile (a table and one
    activity figure each), and the map of the noise hosts that alignment placed in a cluster."""
    space = (
        "align"
        if "align" in result.clusterings
        else "reference"
        if "reference" in result.clusterings
        else None
    )
    if space is None:
        return
    packets = packets_lazy(config, customer, day)
    clusters = result.clusterings[space].labels
    profiles = cluster_profiles(packets, cust.ips, clusters, cust.labels, top=config.cluster.review_top)
    w.write_table("unknown_clusters.parquet", profiles.with_columns(pl.lit(space).alias("space")).to_arrow())
    if profiles.height:
        cluster_activity_figures(packets, cust.ips, clusters, cust.labels, profiles, figs / "clusters",
                                 title_prefix=f"{customer} {day}, {space} space: ")  # fmt: skip
    if coords is not None and "reference" in result.clusterings:
        noise_reassigned_figure(coords, result.clusterings["reference"].labels, clusters,
                                figs / "tsne_noise_reassigned.png",
                                title=f"noise hosts of the customer's own clustering placed in a cluster after "
                                f"alignment ({customer}, {day})")  # fmt: skip


def _write_bundles(
    config: Config, bundles: Path, pair: PairDay, result: PairResult, network: str, day: dt.date, method: str
) -> None:
    """The provider's shipment ("model as a service", [TNSM] IV-D): a classifier trained on every labelled
    provider host, the aligner fit on every anchor (the clustering's, not fitted twice: `bundle_aligner`), the
    anchors' embeddings (by address, or by position in the agreed intersection after private discovery).
    Tensors only, signed with the pipeline's key."""
    prov = pair.provider
    t = time.perf_counter()
    clf = DNNClassifier.from_config(config.evaluate, seed=config.evaluate.seed)
    keep = prov.labels != "unknown"
    val = np.random.default_rng(config.evaluate.seed).random(prov.ips.size) < config.evaluate.val_fraction
    clf.fit(prov.X[keep & ~val], prov.labels[keep & ~val], prov.X[keep & val], prov.labels[keep & val])
    common = {
        "network": network,
        "day": day,
        "config_hash": config.stage_hash("results"),
        "signing_key": pipeline_signing_key(config.exchange.signing_key, config.data_path),
    }
    save_classifier(bundles / "classifier", clf, method=method, **common)
    result.seconds["bundle_classifier"] = time.perf_counter() - t
    kind, aligner = bundle_aligner(result, prov, pair.customer, config, anchor_ips=pair.agreed)
    save_aligner(bundles / f"aligner-{kind}", aligner, method=method, **common)
    if pair.agreed is None:
        anchors = find_anchors(prov.ips, pair.customer.ips)
        save_anchors(bundles / "anchors", anchors.ips, prov.X[anchors.provider_rows], method=method, **common)
    else:  # named by position in the agreed intersection, not by address
        order = np.argsort(prov.ips)
        rows = order[np.searchsorted(prov.ips[order], pair.provider_anchors)]
        save_anchor_positions(bundles / "anchors", prov.X[rows], mode=config.adapt.anchor_discovery,
                              method=method, **common)  # fmt: skip
