"""Seconds per daily embedding update on a simulated paper-scale darknet day, for every method.

Simulates `--days` days of darknet-a at `--scale` (1.0 = ~2 M packets, ~7,500 active hosts per day), builds the
corpus and graph of each day, then times the update of the last day (continuing the previous days):

* i-DarkVec (gensim `corpus_file` mode, 1 worker: the reproducible default), against gensim's classic iterable
  mode on the same corpus measured in the same run (the reference);
* GCN, i-GCN, GCN-GRU (fit on the available days), i-GCN-GRU, with and without node features (torch threads as
  given by `--threads`; CUDA when present).

Usage: `python benchmarks/embeddings.py [--scale 1.0] [--days 3] [--threads 1]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default="gcn,igcn,gcngru,igcngru,gcn-nofeat,igcn-nofeat,igcngru-nofeat")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    from darkembed.config import load_config
    from darkembed.embed.w2v import IDarkVec
    from darkembed.ingest import ingest_day
    from darkembed.layout import Layout
    from darkembed.simulate import simulate
    from darkembed.stages.corpus import build_corpus
    from darkembed.stages.embed import embed_gnn
    from darkembed.stages.graph import build_graph
    from darkembed.stages.ingest import day_files
    from darkembed.stages.read import CORPUS_FILE

    with tempfile.TemporaryDirectory(prefix="darkembed-embed-bench-") as tmp:
        tmp = Path(tmp)
        world = tmp / "world"
        cfg = load_config(
            overrides={
                "data_root": str(tmp / "data"),
                "simulate": {"out": str(world), "days": args.days, "scale": args.scale},
                "networks": [
                    {
                        "name": "darknet-a",
                        "prefix": "198.51.100.0/24",
                        "captures": [str(world) + "/darknet-a/{day:%Y-%m-%d}/*.pcap.gz"],
                    }
                ],
                "pairs": [],
            }
        )
        t0 = time.perf_counter()
        simulate(cfg)
        lay = Layout(cfg.data_path)
        days = [cfg.simulate.start + dt.timedelta(days=i) for i in range(args.days)]
        for d in days:
            ingest_day(lay.packets("darknet-a", d), day_files(cfg, "darknet-a", d), d)
            build_corpus(cfg, "darknet-a", d)
            g = build_graph(cfg, "darknet-a", d)
        print(
            f"world: {args.days} days at scale {args.scale}, last day {g['hosts']:,} hosts, {g['ports']:,} ports, "
            f"{g['edges']:,} edges, {g['packets']:,} packets (prepared in {time.perf_counter() - t0:.0f} s); "
            f"torch threads {args.threads}, device {'cuda' if torch.cuda.is_available() else 'cpu'}"
        )

        corpora = [lay.corpus("darknet-a", d) / CORPUS_FILE for d in days]
        model = IDarkVec(cfg.w2v)
        for c in corpora[:-1]:
            model.update(c)
        st = model.update(corpora[-1])
        # Reference: the same daily update through gensim's iterable (LineSentence) path.
        ref = Word2Vec(
            vector_size=cfg.w2v.size,
            window=cfg.w2v.window,
            negative=cfg.w2v.negative,
            sample=0,
            min_count=1,
            sg=1,
            seed=cfg.w2v.seed,
            workers=1,
        )
        ref.build_vocab(LineSentence(str(corpora[0])))
        ref.train(LineSentence(str(corpora[0])), total_examples=ref.corpus_count, epochs=1)
        for c in corpora[1:]:
            ref.build_vocab(LineSentence(str(c)), update=True)
            t = time.perf_counter()
            ref.train(LineSentence(str(c)), total_examples=ref.corpus_count, epochs=1)
            t_ref = time.perf_counter() - t
        print(f"\n{'method':18} {'s/update':>9} {'epochs':>7}  note")
        print(
            f"{'idarkvec':18} {st.seconds:9.2f} {st.epochs:7d}  {st.words:,} tokens, vocab {st.vocab:,}; "
            f"iterable-mode reference {t_ref:.2f} s (x{t_ref / st.seconds:.1f})"
        )
        for m in args.methods.split(","):
            for d in days[:-1]:
                if not m.startswith("gcn"):
                    embed_gnn(cfg, "darknet-a", d, m)
            t = time.perf_counter()
            r = embed_gnn(cfg, "darknet-a", days[-1], m)
            total = time.perf_counter() - t
            print(
                f"{m:18} {r['seconds']:9.2f} {r['epochs']:7d}  window {r['window_days']} day(s); "
                f"with embedding export and checkpoint {total:.2f} s"
            )


if __name__ == "__main__":
    main()
