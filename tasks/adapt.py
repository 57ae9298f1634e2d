"""Prefect task of the adaptation stage: one provider-customer pair on one day.

Reads the pair's embeddings, labels, the provider's i-DarkVec checkpoint and the customer's corpus; writes
`<root>/results/method=<m>/network=<provider>~<customer>/day=<d>/` with the per-setting scores
(`summary.parquet`), per-host predictions, cluster assignments, the knowledge-gain tables, figures, a markdown
summary, and the exchange bundles a provider ships (classifier and aligner weights, anchor embeddings:
safetensors + manifest, nothing executable).
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from darkembed.adapt.anchors import find_anchors
from darkembed.adapt.exchange import pipeline_signing_key, save_aligner, save_anchors
from darkembed.adapt.psi import discover_from_config, save_anchor_positions
from darkembed.config import Config
from darkembed.embed.w2v import IDarkVec, seed_from_provider
from darkembed.evaluate.classifier_bundle import save_classifier
from darkembed.evaluate.classifiers import DNNClassifier
from darkembed.evaluate.metrics import confusion
from darkembed.evaluate.pair import bundle_aligner_kind, evaluate_pair, summary_markdown, sweep_markdown
from darkembed.evaluate.protocol import NetworkDay, anchor_sweep, fit_aligner, sweep_curve
from darkembed.layout import Layout
from darkembed.report.clusters import cluster_activity_figures, cluster_profiles, noise_reassigned_figure
from darkembed.report.figures import anchor_curve, confusion_plot, f1_bars, tsne_embedding, tsne_scatter
from darkembed.schemas import embeddings_table
from darkembed.stages.read import CORPUS_FILE, load_network_day, packets_lazy, pair_name
from darkembed.store import write_partition
from darkembed.torchutil import set_default_device

log = logging.getLogger(__name__)

def draw_tsne(config: Config, last_day: bool) -> bool:
    """Whether the adapt stage draws its t-SNE maps (`report.tsne`): `always`, `never`, or on the `last` day of a
    backfill (a single nightly or transfer run is its own last day)."""
    return config.report.tsne == "always" or (config.report.tsne == "last" and last_day)


@task(name="adapt", task_run_name="adapt[{provider}~{customer}/{day}]", cache_policy=NO_CACHE)
def adapt_pair(
    config: Config,
    provider: str,
    customer: str,
    day: dt.date,
    method: str = "idarkvec",
    last_day: bool = True,
) -> dict:
    """Every [TNSM] setting for the pair's day, clustering, figures and the exchange bundles.

    `last_day`: whether this is the last day of a backfill (the t-SNE maps are drawn there with `report.tsne:
    last`).
    """
    set_default_device(config.compute.device)
    lay = Layout(config.data_path)
    prov, _ = load_network_day(config, method, provider, day)
    cust, own = load_network_day(config, method, customer, day)
    corpus = lay.corpus(customer, day) / CORPUS_FILE
    if config.adapt.customer_history == "day":  # [TNSM] Table II: the customer owns this one day only
        fresh = IDarkVec(config.w2v)
        fresh.update(corpus)
        c_ips, c_X = fresh.embed(cust.ips)
        keep = np.isin(cust.ips, c_ips)  # every active host is in the day's corpus: normally all of them
        own = own[keep]
        cust = NetworkDay.of(c_ips, c_X, cust.labels[keep])
    # The anchors as the two parties would find them (`adapt.anchor_discovery`): the same set in every mode.
    p_anchors, c_anchors = discover_from_config(prov.ips, cust.ips, config.adapt)
    agreed = None if config.adapt.anchor_discovery == "plain" else np.sort(c_anchors)
    transferred = transfer_fn = None
    if method == "idarkvec":
        model = IDarkVec.load(lay.models(method, provider, day), config.w2v)

        def transfer_fn(anchor_ips: np.ndarray) -> NetworkDay:
            seeded, _ = seed_from_provider(model, anchor_ips, corpus, config.w2v)
            t_ips, t_X = seeded.embed(cust.ips)
            return NetworkDay.of(t_ips, t_X, cust.labels[np.isin(cust.ips, t_ips)])

        transferred = transfer_fn(np.sort(c_anchors))
    extra = {}
    if method != "idarkvec":
        from darkembed.embed.gnn import INDUCTIVE_METHOD, GnnTrainer, embed_inductive
        from darkembed.stages.read import day_graphs
        from darkembed.config import parse_gnn_method

        base, features = parse_gnn_method(method)
        if (
            features
        ):  # the GCN family with node features is inductive: the provider's model embeds the customer
            trainer = GnnTrainer.load(lay.models(method, provider, day), cfg=config.gnn)
            window = config.gnn.history + 1 if base in ("gcngru", "igcngru") else 1
            i_ips, i_X = embed_inductive(trainer, day_graphs(config, customer, day, window, True))
            extra[INDUCTIVE_METHOD] = NetworkDay.of(i_ips, i_X, None)
    result = evaluate_pair(prov, cust, config, customer_own_labels=own, transferred=transferred, extra=extra,
                           anchor_ips=agreed)  # fmt: skip
    sweep = _anchor_sweep(config, prov, cust, result, transfer_fn)
    part = lay.partition("results", day, pair_name(provider, customer), method)
    title = f"{provider} -> {customer}, {day}, {method}"
    summary = result.summary()
    inputs = [lay.partition(s, day, n, m) for n in (provider, customer)
              for s, m in (("embeddings", method), ("models", method), ("labels", None), ("corpus", None))]  # fmt: skip
    with write_partition(
        part, dataset="results", config_hash=config.stage_hash("results"), inputs=inputs
    ) as w:
        w.write_table("summary.parquet", summary.to_arrow())
        w.write_table("predictions.parquet", result.predictions().to_arrow())
        if transferred is not None:
            w.write_table("transfer_embeddings.parquet", embeddings_table(transferred.ips, transferred.X))
        if result.cluster_metrics:
            rows = [{"space": sp, "metric": k, "value": float(v)} for sp, m in result.cluster_metrics.items()
                    for k, v in m.items()]  # fmt: skip
            w.write_table("cluster_metrics.parquet", pl.DataFrame(rows).to_arrow())
        for name, cl in result.clusterings.items():
            frame = pl.DataFrame({"src_ip": cust.ips, "cluster": cl.labels, "label": cust.labels.astype(str)})
            w.write_table(f"clusters_{name}.parquet", frame.to_arrow())
            w.write_table(f"knowledge_{name}.parquet", result.knowledge[name].to_arrow())
        md = summary_markdown(result, title)
        figs = w.path("figures")
        figs.mkdir()
        if sweep is not None:
            w.write_table("anchor_sweep.parquet", sweep.to_arrow())
            curves = _sweep_curves(sweep)
            anchor_curve({s: (c["fraction"], c["f1_mean"], c["f1_std"]) for s, c in curves.items()},
                         figs / "anchor_curve.png", title=f"impact of the anchors, {title}")  # fmt: skip
            md += sweep_markdown(curves)
        w.path("summary.md").write_text(md)
        per = summary.filter(pl.col("class") != "macro")
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
        coords = None
        if "align" in result.clusterings and draw_tsne(config, last_day):
            t = time.perf_counter()
            coords = tsne_embedding(result.spaces["align"], seed=config.evaluate.seed)
            result.seconds["tsne"] = time.perf_counter() - t
            tsne_scatter(coords, cust.labels, figs / "tsne_align_labels.png", legend_title="label",
                         title=f"customer hosts after alignment: labels ({customer}, {day})")  # fmt: skip
            tsne_scatter(coords, result.clusterings["align"].labels, figs / "tsne_align_clusters.png",
                         title=f"customer hosts after alignment: HDBSCAN clusters ({customer}, {day})")  # fmt: skip
        _analyst_view(config, customer, day, cust, result, w, figs, coords)
        # The provider's shipment ("model as a service", [TNSM] IV-D): classifier on every labelled provider
        # host, non-linear aligner on every anchor, the anchors' embeddings. Tensors only.
        bundles = w.path("bundles")
        bundles.mkdir()
        t = time.perf_counter()
        clf = DNNClassifier.from_config(config.evaluate, seed=config.evaluate.seed)
        keep = prov.labels != "unknown"
        val = np.random.default_rng(config.evaluate.seed).random(prov.ips.size) < config.evaluate.val_fraction
        clf.fit(prov.X[keep & ~val], prov.labels[keep & ~val], prov.X[keep & val], prov.labels[keep & val])
        common = {
            "network": pair_name(provider, customer),
            "day": day,
            "config_hash": config.stage_hash("results"),
            "signing_key": pipeline_signing_key(config.exchange.signing_key, config.data_path),
        }
        save_classifier(bundles / "classifier", clf, method=method, **common)
        result.seconds["bundle_classifier"] = time.perf_counter() - t
        kind = bundle_aligner_kind(config)
        aligner = result.aligners.get(kind)  # fit once on every anchor for the clustering: ship that one
        if aligner is None:
            aligner, _ = fit_aligner(prov, cust, kind, config.adapt, seed=config.evaluate.seed,
                                     anchor_ips=agreed)  # fmt: skip
        save_aligner(bundles / f"aligner-{kind}", aligner, method=method, **common)
        if agreed is None:
            anchors = find_anchors(prov.ips, cust.ips)
            save_anchors(
                bundles / "anchors", anchors.ips, prov.X[anchors.provider_rows], method=method, **common
            )
        else:  # named by position in the agreed intersection, not by address
            order = np.argsort(prov.ips)
            rows = order[np.searchsorted(prov.ips[order], p_anchors)]
            save_anchor_positions(bundles / "anchors", prov.X[rows], mode=config.adapt.anchor_discovery,
                                  method=method, **common)  # fmt: skip
    macro = result.macro_f1()
    return {
        "pair": pair_name(provider, customer),
        "network": pair_name(provider, customer),
        "provider": provider,
        "customer": customer,
        "method": method,
        "day": day.isoformat(),
        "partition": str(part),
        "anchors": result.anchors,
        "provider_hosts": int(prov.ips.size),
        "customer_hosts": int(cust.ips.size),
        "macro_f1": macro,
        "open_set": result.open_set(),
        "clusters": {
            k: v for name, m in result.cluster_metrics.items() for k, v in _prefixed(name, m).items()
        },
        "seconds": result.seconds,
        "figures": sorted(str(p) for p in (part / "figures").glob("*.png")),
        "summary_md": str(part / "summary.md"),
    }


def _analyst_view(
    config: Config, customer: str, day: dt.date, cust: NetworkDay, result, w, figs, coords
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


def _anchor_sweep(
    config: Config, prov: NetworkDay, cust: NetworkDay, result, transfer_fn
) -> pl.DataFrame | None:
    """The anchor-fraction sweep of each setting in `adapt.sweep` on the pair's folds and classifiers."""
    frames = []
    for kind in config.adapt.sweep:
        if kind == "transfer" and transfer_fn is None:
            log.info("anchor sweep: no canonical transfer for this method, skipped")
            continue
        setting = "transfer" if kind == "transfer" else f"align/{kind}"
        frame = anchor_sweep(prov, cust, result.folds, kind, config.evaluate, config.adapt,
                             classifiers=result.classifiers, transfer_fn=transfer_fn)  # fmt: skip
        frames.append(frame.with_columns(pl.lit(setting).alias("setting")))
    return pl.concat(frames) if frames else None


def _sweep_curves(sweep: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {s: sweep_curve(g) for (s,), g in sweep.group_by("setting", maintain_order=True)}


def _prefixed(name: str, metrics: dict) -> dict:
    return {f"{name}.{k}": v for k, v in metrics.items()}
