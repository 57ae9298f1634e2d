"""The pipeline's stages, one module each, without Prefect.

Each stage module has one entry point per unit of work (a network-day, a pair-day, an experiment) that reads its
input partitions, calls the library and writes its partition through `darkembed.store`, returning a small typed
result (a `TypedDict`, JSON-serialisable: Prefect stores it and the flows log it to MLflow). The Prefect tasks in
`tasks/` are one call of an entry point each (plus retries, names and caching); the flows in `flows/` compose them.

==============  ===================================================  =========================================
module          entry point(s)                                       writes
==============  ===================================================  =========================================
`ingest`        `plan_day`, `ingest_source`, `commit_packets`        `packets/network=<n>/day=<d>/`
`labels`        `label_day`                                          `labels/...`
`corpus`        `build_corpus`                                       `corpus/...`
`graph`         `build_graph`                                        `graph/...`
`report`        `report_activity`                                    `reports/...`
`embed`         `embed_idarkvec`, `embed_gnn`                        `models/...`, `embeddings/...`
`knn`           `knn_day`                                            nothing (scores)
`adapt`         `adapt_pair`                                         `results/method=<m>/network=<p>~<c>/...`
`experiments`   `resolve_experiment`, `evaluate_experiment`          `<home>/<name>/report.md`, tables
==============  ===================================================  =========================================

`read` holds what several stages read the same way (the packets readers, the embeddings-plus-labels join, the
current-partition check, the graphs of a window, file names inside partitions); `day` what a network-day
produces and which of it is stale. See docs/design.md (layers).
"""
