"""Configuration: YAML files validated into frozen pydantic models.

`conf/default.yaml` (shipped inside the package as well, so an installed darkembed finds it) is the embedded
default. A user's file overlays it key by key (mappings merge, lists and scalars replace). Unknown keys are errors
that name the key and the file. Environment variables only set machine settings: `DARKEMBED_DATA_ROOT`,
`DARKEMBED_TRACKING_URI` (or `MLFLOW_TRACKING_URI`) and Prefect's own `PREFECT_API_URL`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import string
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid; the message names the file and the key."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TrackingConfig(_Frozen):
    """Where MLflow writes: a local SQLite store by default, a server URI in production."""

    uri: str = "sqlite:///var/mlflow.db"
    artifacts: str = "var/mlartifacts"
    experiment: str = "darkembed"


class NetworkConfig(_Frozen):
    """One observed network and its inputs.

    `captures` are glob patterns with a `{day}` placeholder formatted by Python's `str.format` with the day as a
    `datetime.date`, e.g. `var/world/darknet-a/{day:%Y-%m-%d}/*.pcap.gz`.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: Literal["darknet", "honeypot"] = "darknet"
    role: Literal["provider", "customer", "standalone"] = "standalone"
    prefix: str | None = None
    captures: list[str] = Field(default_factory=list)
    legacy_traces: list[str] = Field(default_factory=list)
    cowrie: list[str] = Field(default_factory=list)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str | None) -> str | None:
        if prefix is None:
            return None
        try:
            ipaddress.IPv4Network(prefix, strict=False)
        except ValueError as exc:
            raise ValueError(f"prefix {prefix!r} is not an IPv4 prefix like 198.51.100.0/24: {exc}") from None
        return prefix

    @field_validator("captures", "legacy_traces", "cowrie")
    @classmethod
    def _placeholders(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            check_day_pattern(p)
        return patterns

    def inputs_for(self, day: dt.date) -> dict[str, list[str]]:
        """The glob patterns of this network for one day, by input kind."""
        return {
            "captures": [p.format(day=day) for p in self.captures],
            "legacy_traces": [p.format(day=day) for p in self.legacy_traces],
            "cowrie": [p.format(day=day) for p in self.cowrie],
        }

    def input_problems(self, day: dt.date) -> list[str]:
        """What the ingest would skip silently on `day`: patterns whose matches are directories, dangling links
        or symbolic-link loops (only regular files are read), one message each naming the path and the pattern."""
        import glob

        problems = []
        for kind, patterns in self.inputs_for(day).items():
            for p in patterns:
                for hit in sorted(glob.glob(os.path.expanduser(p), recursive=True)):
                    why = _not_a_file(Path(hit))
                    if why:
                        problems.append(
                            f"network {self.name}: {kind} pattern {p!r} matches {hit}, {why}: skipped"
                        )
        return problems


def check_day_pattern(pattern: str) -> None:
    """Refuse a glob pattern whose placeholders are anything but `{day}` with an optional date format
    (`{day:%Y-%m-%d}`): no attribute access, no index, no other name.

    Raises:
        ValueError: naming the pattern and the field at fault.
    """
    try:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise ValueError(f"pattern {pattern!r}: {exc} (write a literal brace as {{{{ or }}}})") from None
    for name, spec in fields:
        if name != "day" or "{" in (spec or ""):
            raise ValueError(
                f"pattern {pattern!r} may only use the placeholder {{day}} (optionally with a date format, "
                f"{{day:%Y-%m-%d}}), not {{{name}}}"
            )
        try:
            pattern.format(day=dt.date(2000, 1, 1))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"pattern {pattern!r}: bad date format {spec!r}: {exc}") from None


def _not_a_file(path: Path) -> str | None:
    """Why a glob match is not a readable regular file (None when it is one)."""
    import errno
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic-link loop"
        if path.is_symlink():
            return "a dangling symbolic link"
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    return "a directory" if stat.S_ISDIR(mode) else "not a regular file"


class PairConfig(_Frozen):
    """A provider (has labels) and a customer (has none) that exchange anchors."""

    provider: str
    customer: str


class IngestConfig(_Frozen):
    """Packet ingest.

    Attributes:
        workers: parallel file parsers; 0 means one per core.
        max_bad_offsets: how many bad records per file are reported with their byte offset.
        keep_outside_day: keep packets whose timestamp falls outside the UTC day being ingested.
        verify_checksums: drop packets whose IPv4 header checksum is wrong; false for captures taken on a host with
            checksum offload (the packets are then kept and counted as flagged).
    """

    workers: int = Field(default=0, ge=0)
    max_bad_offsets: int = Field(default=1000, ge=0)
    keep_outside_day: bool = False
    verify_checksums: bool = True


class ActivityConfig(_Frozen):
    """Which packets and hosts a day's corpus and graph are built from (docs/method.md 1.3, 7.6).

    Attributes:
        protocols: IP protocol numbers kept (TCP only by default).
        honeypot_syn_only: for honeypot networks keep only TCP SYNs.
        min_packets: activity threshold per host and day.
        min_packets_rule: `ge` (at least `min_packets`, the papers) or `gt` (more than, the authors' code).
        top_ports: destination services kept per day; the rest share one `other` bucket.
    """

    protocols: list[int] = Field(default_factory=lambda: [6])
    honeypot_syn_only: bool = True
    min_packets: int = Field(default=5, ge=1)
    min_packets_rule: Literal["ge", "gt"] = "ge"
    top_ports: int = Field(default=2500, ge=1)


class CorpusConfig(_Frozen):
    """The i-DarkVec corpus (docs/method.md 3.2, 3.3, 7.6).

    Attributes:
        variant: `per-port` (time-ordered senders per service, the default), `stream` (the authors' GNN-paper code:
            all services concatenated, cut every `max_sentence` tokens) or `hourly` (DarkVec: one sentence per
            service and hour).
        max_sentence: tokens per sentence at most (gensim silently truncates sentences over 10,000 tokens).
        dedup_consecutive: drop consecutive repeats of a sender inside a sentence.
    """

    variant: Literal["per-port", "stream", "hourly"] = "per-port"
    max_sentence: int = Field(default=1000, ge=2, le=10000)
    dedup_consecutive: bool = True


class GraphConfig(_Frozen):
    """The daily bipartite host-port graph (docs/method.md 4.1-4.3, 7.6).

    Attributes:
        edges: `daily`: packets of the day per host-port pair (the fix of docs/method.md 7.1 item 1); `first_seen`:
            the authors' parity mode, a host-port edge only on the first day of the calendar month it appears
            (repeated daily activity invisible to message passing; every earlier day of the month must exist).
        node_type_indicator: append a 38th feature, 1 for port nodes, 0 for hosts.
    """

    edges: Literal["daily", "first_seen"] = "daily"
    node_type_indicator: bool = True


class W2VConfig(_Frozen):
    """i-DarkVec Word2Vec hyper-parameters (docs/method.md 3.4, 7.6).

    Attributes:
        size: embedding dimension e.
        window: context window c.
        negative: negative samples per positive.
        sample: down-sampling of frequent words (0 = off).
        min_count: minimum occurrences of a host to enter the vocabulary.
        epochs: passes over a day's corpus in an incremental update.
        first_epochs: passes on the first day (from scratch).
        workers: training threads; 1 gives reproducible runs.
        seed: vector initialisation and sampling seed.
    """

    size: int = Field(default=128, ge=2)
    window: int = Field(default=5, ge=1)
    negative: int = Field(default=5, ge=1)
    sample: float = Field(default=0.0, ge=0)
    min_count: int = Field(default=1, ge=1)
    epochs: int = Field(default=1, ge=1)
    first_epochs: int = Field(default=1, ge=1)
    workers: int = Field(default=1, ge=1)
    seed: int = 15
    alpha: float = Field(default=0.025, gt=0)
    min_alpha: float = Field(default=0.0001, gt=0)


#: The GNN models (docs/method.md section 4): daily GCN, incremental i-GCN, GCN-GRU and i-GCN-GRU.
GNN_MODELS: tuple[str, ...] = ("gcn", "igcn", "gcngru", "igcngru")
#: The GNN embedding methods: each model with node features, and without (`-nofeat`).
GNN_METHODS: tuple[str, ...] = tuple(f"{m}{s}" for m in GNN_MODELS for s in ("", "-nofeat"))
#: Every embedding method the pipeline trains.
EMBED_METHODS: tuple[str, ...] = ("idarkvec", *GNN_METHODS)


def parse_gnn_method(name: str) -> tuple[str, bool]:
    """A GNN method's model and whether it uses node features: `igcngru-nofeat` -> ("igcngru", False).

    Raises:
        ValueError: `name` is not one of `GNN_METHODS`.
    """
    if name not in GNN_METHODS:
        raise ValueError(f"unknown GNN method {name!r}; known: {', '.join(GNN_METHODS)}")
    base, _, suffix = name.partition("-")
    return base, suffix != "nofeat"


def _known_methods(methods: list[str]) -> list[str]:
    unknown = [m for m in methods if m not in EMBED_METHODS]
    if unknown:
        raise ValueError(f"unknown embedding method(s) {unknown}; known: {', '.join(EMBED_METHODS)}")
    return methods


class EmbedConfig(_Frozen):
    """Which embedding methods the pipeline trains per network and day.

    Attributes:
        methods: any of `idarkvec` and the GNN methods (`gcn`, `igcn`, `gcngru`, `igcngru`, each optionally with
            the suffix `-nofeat` for the variant without node features).
        chain_start: the first day of the incremental chains (the only day that starts a model fresh; any other
            day needs the previous day's checkpoint); None = the simulated world's first day (`simulate.start`).
    """

    methods: list[str] = Field(default_factory=lambda: ["idarkvec"], min_length=1)
    chain_start: dt.date | None = None

    @field_validator("methods")
    @classmethod
    def _methods(cls, methods: list[str]) -> list[str]:
        return _known_methods(methods)


class OrchestrationConfig(_Frozen):
    """How flows run their tasks (machine settings stay in the environment: PREFECT_API_URL).

    Attributes:
        max_workers: threads of the local task runner.
        torch_threads: torch intra-op threads per process; 0 = the cores divided by `max_workers` (at least 1).
        dask_address: a Dask scheduler (`tcp://host:8786`) to fan tasks over (ingest files, evaluation folds);
            None runs them in local threads.
        embed_deployment: a Prefect deployment (`embed/embed-gpu`) that runs the embedding flow on the GPU work
            pool; None runs it inline as a subflow.
        server_startup_timeout: seconds the command waits for Prefect's local (ephemeral) server to answer; it
            starts in about 10 s on an idle 2-core machine and several times slower on a busy one (the environment's
            `PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS` wins).
    """

    max_workers: int = Field(default=4, ge=1)
    torch_threads: int = Field(default=0, ge=0)
    dask_address: str | None = None
    embed_deployment: str | None = None
    server_startup_timeout: int = Field(default=600, ge=1)


class GnnConfig(_Frozen):
    """The GCN family's embeddings (docs/method.md 4.4-4.7, 7.6; `darkembed.embed.gnn`).

    Attributes:
        hidden: graph-convolution output sizes; the paper's 37 -> 1024 (ReLU) -> 512.
        embedding_dim: size of the host embeddings (the head Linear(512 -> 128) -> ReLU -> BatchNorm).
        predictor_hidden: hidden size of the link-prediction head (256 -> 64 -> 2).
        dropout: after each graph convolution (0 in all the authors' runs).
        lr: Adam learning rate.
        weight_decay: Adam L2 penalty.
        history: H, the GCN-GRU window is the H + 1 days [t - H, t].
        negatives: negatives per positive edge (ns).
        max_epochs: GCN (per day) and GCN-GRU (once) epochs at most; one epoch is one full-batch step per
            target day.
        patience: early stopping after this many epochs without a lower held-out loss.
        val_fraction: share of a day's host-port edges held out for early stopping (removed from the loss and
            from message passing).
        incremental_epochs_features: i-GCN and i-GCN-GRU epochs per day with node features.
        incremental_epochs_no_features: the same without node features.
        train_days: M, the days GCN-GRU is trained on before it is frozen (used by the flows).
        vocab_max_idle: without node features, a node's learned input row is dropped after this many updates
            without activity (a returning host starts afresh); None keeps every row for ever.
        bn_recalibrate: after each update, set BatchNorm's running statistics to the statistics of the updated
            day's full graph, so that eval-mode inference normalises as training did.
        absent_days: what the GCN-GRU does at a day of the window on which a host was not active: `zero` feeds
            it a zero input, as the authors' code does (the state then also encodes the host's activity
            pattern), `skip` leaves its state unchanged, as if the day were not in its window
            (docs/results.md, "i-GCN-GRU and the window").
    """

    hidden: list[int] = Field(default_factory=lambda: [1024, 512], min_length=1)
    embedding_dim: int = Field(default=128, ge=1)
    predictor_hidden: int = Field(default=64, ge=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=5e-3, ge=0)
    history: int = Field(default=5, ge=0)
    negatives: int = Field(default=1, ge=1)
    max_epochs: int = Field(default=50, ge=1)
    patience: int = Field(default=3, ge=1)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    incremental_epochs_features: int = Field(default=1, ge=1)
    incremental_epochs_no_features: int = Field(default=5, ge=1)
    train_days: int = Field(default=20, ge=1)
    vocab_max_idle: int | None = Field(default=30, ge=1)
    bn_recalibrate: bool = True
    absent_days: Literal["zero", "skip"] = "zero"

    @field_validator("hidden")
    @classmethod
    def _positive(cls, sizes: list[int]) -> list[int]:
        if any(h < 1 for h in sizes):
            raise ValueError(f"layer sizes must be positive: {sizes}")
        return sizes


class SweepConfig(_Frozen):
    """A configuration value an experiment varies (`gnn.history`, `gnn.incremental_epochs_features`, ...).

    Attributes:
        key: dotted path of the setting.
        values: the values, run in order.
        paper: the paper's number per value, printed beside ours.
    """

    key: str = Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$")
    values: list[Any] = Field(min_length=1)
    paper: dict[str, str] = Field(default_factory=dict)


class ExperimentConfig(_Frozen):
    """A named experiment of the papers (conf/experiments/<name>.yaml; `darkembed experiment NAME`).

    Attributes:
        name: the experiment's name.
        title: what it reproduces, e.g. "[GNN] Table 3".
        kind: `knn` (leave-one-out 3-NN over the test days, per method) or `transfer` (every setting of each pair on
            the evaluation days).
        network: the network scored by a `knn` experiment.
        test_days: N days are evaluated (the papers: 11 of 31 days for [GNN], 1 day for [TNSM]).
        first_test_day: the first evaluated day, counted from 1 = the world's first day; None = the last
            `test_days` days of the world.
        world: experiments naming the same world share its simulated captures and pipeline data
            (`<home>/worlds/<world>/`): the [TNSM] tables evaluate one 42-day world; None = a world of its own.
        networks: the networks the backfill processes; None = the pairs' networks (`transfer`) or `network`
            (`knn`).
        sweep: a parameter swept across values, each a full backfill of the embeddings ([GNN] Fig. 4).
        paper: reference numbers to print beside ours, `row -> column -> value` as printed in docs/method.md.
    """

    name: str
    title: str = ""
    kind: Literal["knn", "transfer"] = "knn"
    network: str | None = None
    test_days: int = Field(default=1, ge=1)
    first_test_day: int | None = Field(default=None, ge=1)
    world: str | None = None
    networks: list[str] | None = None
    sweep: SweepConfig | None = None
    paper: dict[str, dict[str, str]] = Field(default_factory=dict)


class SimulateConfig(_Frozen):
    """The traffic simulator's world (see `darkembed.simulate` and docs/design.md, "The simulator").

    The networks it writes are the `networks` of the configuration (their names, kinds and /24 prefixes).

    Attributes:
        out: output folder of `darkembed simulate`.
        start: first simulated day (UTC).
        days: number of days.
        scale: multiplier on the hosts of every class; 1.0 gives about 2 M packets and 7,500 active hosts
            (at least 5 packets) per darknet-day, as docs/method.md section 6.6.
        seed: seed of every random draw; the same seed and config give byte-identical files.
        anchor_share: share of a darknet's active hosts that another darknet also sees on the same day
            (0.73 in [TNSM] Table I); scanner organisations that cover the whole Internet are always shared.
        class_mix: multiplier on the hosts per day of a class, by class name (e.g. `{mirai: 2.0}`).
        min_hosts: floor on the active hosts per day of every class after scaling (capped by a scanner
            organisation's address blocks), so that small worlds keep every class evaluable.
        churn: multiplier on host turnover (1 = reference lifetimes, 0 = nobody leaves or arrives).
        drift: strength of day-to-day behaviour change (0 = every day the same ports and volumes).
        jitter: sigma of the per-network lognormal jitter of a host's packets per day.
        list_coverage: fraction of an organisation's simulated addresses that its published scanner list covers.
        vlan_frames: 802.1Q-tagged frames per hourly capture file.
        arp_frames: ARP (non-IP) frames per hourly capture file.
        gzip_level: gzip compression level of the captures (low is fast).
    """

    out: str = "var/world"
    start: dt.date = dt.date(2023, 1, 1)
    days: int = Field(default=3, ge=1)
    scale: float = Field(default=0.02, gt=0, le=100)
    seed: int = 15
    anchor_share: float = Field(default=0.73, ge=0, le=1)
    class_mix: dict[str, float] = Field(default_factory=dict)
    min_hosts: int = Field(default=0, ge=0)
    churn: float = Field(default=1.0, ge=0)
    drift: float = Field(default=1.0, ge=0)
    jitter: float = Field(default=0.3, ge=0)
    list_coverage: float = Field(default=0.8, gt=0, le=1)
    vlan_frames: int = Field(default=2, ge=0)
    arp_frames: int = Field(default=3, ge=0)
    gzip_level: int = Field(default=1, ge=1, le=9)

    @field_validator("class_mix")
    @classmethod
    def _mix(cls, mix: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in mix.items() if not v >= 0}
        if bad:
            raise ValueError(f"class_mix multipliers must be >= 0: {bad}")
        return mix


#: Organisation (list or file name, lowercased) -> class name. Keys are matched first on the raw organisation
#: name and then on its normalised form (see `darkembed.labels.scanners.normalise_org`); organisations absent
#: from the table keep their normalised name as class. Mapping to `unknown` drops an organisation's entries.
DEFAULT_ORG_CLASSES: dict[str, str] = {
    "censys": "censys",
    "cybercasa": "driftnet",
    "cyber.casa": "driftnet",
    "driftnet": "driftnet",
    "internet-measurement": "driftnet",  # driftnet's current domain
    "internet-census": "internetcensus",
    "bitsight": "internetcensus",  # BitSight runs internet-census.org ([D-code] notebook 05)
    "netsystemsresearch": "netsystems",
    "strechoid": "stretchoid",  # OpenFilters spells the file strechoid_v4.txt
    "umich": "u_mich",
    "stanford": "u_stanford",
    "caida": "u_caida_ark",
    "isi": "u_isi_ant",
    "team-cymru": "cymru",
    "erratasec": "errata",
    "arbor-observatory": "arbor",
    "recordedfuture": "securitytrails",  # Recorded Future / SecurityTrails
    "paloaltonetworks": "expanse",  # Palo Alto Networks / Cortex Xpanse
    "bufferover": "bufferoverrun",
}


class ScannerListConfig(_Frozen):
    """One acknowledged-scanner list and the days it is in force.

    Attributes:
        path: a file, or for `folder` a directory of `<org>[_v4|_v6].txt` files; for `ipset` a file or a
            directory of `*.ipset` files. Relative paths are relative to the working directory.
        format: `csv` (`ip,class` rows), `folder`, `ipset` (restore files) or `json` (`[{ip, scanner,
            last_seen}]`).
        name: the list's name in label sources; defaults to the file or directory name.
        valid_from: first day (inclusive, UTC) the list is in force; None = since ever.
        valid_to: last day (inclusive, UTC) the list is in force; None = for ever.
        last_seen_grace_days: `json` only: an entry stops matching this many days after its `last_seen`;
            None ignores `last_seen`.
    """

    path: str
    format: Literal["csv", "folder", "ipset", "json"]
    name: str | None = None
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    last_seen_grace_days: int | None = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _period(self) -> ScannerListConfig:
        if self.valid_from and self.valid_to and self.valid_from > self.valid_to:
            raise ValueError(f"valid_from {self.valid_from} is after valid_to {self.valid_to}")
        return self


class FingerprintConfig(_Frozen):
    """Per-host, per-day packet-count thresholds of the tool fingerprints (docs/data-formats.md section 5).

    Attributes:
        mirai_min_packets: TCP SYNs with `tcp_seq == dst_ip` a host must send to be Mirai-like.
        zmap_min_packets: TCP SYNs with IP ID 54321 (ZMap before 4.1.0); one packet matches by chance 1 in 65,536.
        zmap_window: TCP window those SYNs must also carry; None = any.
        masscan_min_packets: TCP SYNs with `ip_id == (dst_ip ^ dst_port ^ tcp_seq) & 0xffff`.
        masscan_window: TCP window those SYNs must also carry (masscan sends 1024); None = any.
        backscatter_min_packets: packets a host whose traffic is only SYN-ACK, RST or ICMP unreachable must send
            to be flagged as backscatter.
    """

    mirai_min_packets: int = Field(default=1, ge=1)
    zmap_min_packets: int = Field(default=3, ge=1)
    zmap_window: int | None = Field(default=65535, ge=0, le=65535)
    masscan_min_packets: int = Field(default=3, ge=1)
    masscan_window: int | None = Field(default=1024, ge=0, le=65535)
    backscatter_min_packets: int = Field(default=1, ge=1)


class HoneypotConfig(_Frozen):
    """Labels derived from Cowrie logs ([TNSM] section VII-B, docs/data-formats.md section 3).

    Attributes:
        bruteforce_more_than: a host with more than this many login attempts in the day is a brute-forcer.
        bruteforce_count: which attempts count: `all` (failed plus successful, the papers' rule) or `failed`
            (failed only: SMTP-relay tunnel bots that log in successfully dozens of times a day are no
            brute-forcers). See docs/honeypot.md.
        exploiter_strict: an exploiter's download must carry a URL with one of `exploiter_url_schemes`
            (captured shell redirects carry none, or `/dev/null`).
        exploiter_url_schemes: URL schemes accepted in strict mode.
        spammer_smtp_ports: destination ports of `cowrie.direct-tcpip.request` events that count as SMTP relaying.
        spammer_min_requests: such requests a host must make to be a spammer; None disables the rule.
    """

    bruteforce_more_than: int = Field(default=10, ge=0)
    bruteforce_count: Literal["all", "failed"] = "all"
    exploiter_strict: bool = False
    exploiter_url_schemes: list[str] = Field(default_factory=lambda: ["http", "https", "ftp", "tftp"])
    spammer_smtp_ports: list[int] = Field(default_factory=lambda: [25, 465, 587])
    spammer_min_requests: int | None = Field(default=1, ge=1)


#: Every label kind a precedence list may name; `scanner` stands for the class of the matched scanner list.
LABEL_KINDS = ("scanner", "mirai", "exploiter", "brute-forcer", "spammer", "zmap", "masscan", "backscatter")


class LabelsConfig(_Frozen):
    """Host labels per network and day: scanner lists, packet fingerprints, honeypot rules and their precedence.

    Attributes:
        scanner_lists: the acknowledged-scanner lists; a day uses those in force that day.
        org_classes: organisation -> class name (a YAML overlay merges with the defaults; a table passed
            directly replaces them).
        fingerprints: packet-fingerprint thresholds.
        honeypot: Cowrie rules.
        precedence: label kinds, strongest first; a host gets the first kind it matched, else `unknown`. Kinds
            left out (by default `zmap`, `masscan`, `backscatter`) are recorded in `sources` but never label.
    """

    scanner_lists: list[ScannerListConfig] = Field(
        default_factory=lambda: [ScannerListConfig(path="var/world/scanners", format="folder", name="world")]
    )
    org_classes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ORG_CLASSES))
    fingerprints: FingerprintConfig = FingerprintConfig()
    honeypot: HoneypotConfig = HoneypotConfig()
    precedence: list[str] = Field(
        default_factory=lambda: ["scanner", "mirai", "exploiter", "brute-forcer", "spammer"]
    )

    @field_validator("precedence")
    @classmethod
    def _kinds(cls, kinds: list[str]) -> list[str]:
        bad = [k for k in kinds if k not in LABEL_KINDS]
        if bad:
            raise ValueError(f"unknown label kinds {bad}; known: {', '.join(LABEL_KINDS)}")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"label kinds repeated in precedence: {kinds}")
        return kinds

    @field_validator("org_classes")
    @classmethod
    def _lower(cls, table: dict[str, str]) -> dict[str, str]:
        return {k.strip().lower(): v.strip() for k, v in table.items()}

    @model_validator(mode="after")
    def _names(self) -> LabelsConfig:
        names = [lst.name or Path(lst.path).name for lst in self.scanner_lists]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scanner list names must be unique (set `name`), repeated: {', '.join(dupes)}")
        return self


AlignerKind = Literal["linear", "nonlinear", "procrustes"]


class AdaptConfig(_Frozen):
    """Explicit aligners from customer to provider space and the anchor sweep (docs/method.md 5.4, 5.5, 7.6).

    Attributes:
        methods: embedding methods whose pairs are evaluated (each must also be in `embed.methods`); a GNN
            method with node features adds the `gnn-inductive` setting (the provider's model embeds the customer's
            graph), `idarkvec` adds canonical `transfer`.
        aligners: aligner kinds the evaluation runs: `linear` and `nonlinear` (sigmoid) DNNs, `procrustes`.
        epochs: DNN aligner training epochs.
        min_steps: the DNN aligner trains at least this many optimisation steps (more epochs when the anchors
            are few, as in the anchor sweep); 0 = exactly `epochs`, the paper.
        width: units of each hidden layer of the DNN aligner (the paper: 1024 with batch 32 and lr 1e-3; 256 with
            batch 64 and lr 1.5e-3 score as well at a 40th of the cost, docs/adaptation-speed.md).
        depth: hidden layers of the DNN aligner.
        batch_size: DNN aligner mini-batch (anchor pairs).
        lr: Adam learning rate of the DNN aligner.
        linear_solver: how the `linear` aligner is fitted: `lstsq` = the ridge least-squares optimum of the linear
            model in closed form (milliseconds); `dnn` = the [TNSM] linear DNN trained with Adam (minutes per fold
            on CPU, the paper's exact setting). See docs/adaptation-speed.md.
        linear_ridge: relative ridge penalty of the closed-form linear aligner (times the mean feature variance).
        procrustes_center: subtract each side's anchor mean before the rotation (and add the provider's back).
        procrustes_scale: also fit one global scale factor.
        anchor_fractions: anchor shares of the sweep, each in (0, 1].
        anchor_repeats: stratified samples per fraction below 1 (the 100 % point runs once).
        sweep: settings whose anchor-fraction curve the adapt stage computes ([TNSM] "impact of anchors"): any of
            `transfer` (i-DarkVec only) and the aligner kinds; empty = no sweep (it costs fractions x repeats x
            folds aligner fits).
        customer_history: `full` = the customer's own embeddings are its daily-updated model ([TNSM] Table III);
            `day` = the customer trains i-DarkVec from scratch on the evaluated day only (Table II).
        anchor_discovery: how the pair finds its anchors: `plain` (the intersection of both address lists),
            `hmac` (keyed hashes of the addresses) or `psi` (private set intersection); the anchors, and so every
            score, are the same; with `hmac`/`psi` the anchor bundle names anchors by position
            (docs/private-anchors.md).
        anchor_key: file with the secret both parties agreed on (authenticates the messages; the `hmac` key);
            None = a random secret per run (both parties in one process).
    """

    methods: list[str] = Field(default_factory=lambda: ["idarkvec"])
    aligners: list[AlignerKind] = Field(default_factory=lambda: ["linear", "nonlinear", "procrustes"])
    epochs: int = Field(default=50, ge=1)
    min_steps: int = Field(default=1000, ge=0)
    width: int = Field(default=256, ge=1)
    depth: int = Field(default=3, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=1.5e-3, gt=0)
    linear_solver: Literal["lstsq", "dnn"] = "lstsq"
    linear_ridge: float = Field(default=1e-3, ge=0)
    procrustes_center: bool = True
    procrustes_scale: bool = False
    anchor_fractions: list[float] = Field(default_factory=lambda: [round(0.1 * i, 1) for i in range(1, 11)])
    anchor_repeats: int = Field(default=5, ge=1)
    sweep: list[Literal["transfer", "linear", "nonlinear", "procrustes"]] = Field(default_factory=list)
    customer_history: Literal["full", "day"] = "full"
    anchor_discovery: Literal["plain", "hmac", "psi"] = "plain"
    anchor_key: str | None = None

    @field_validator("methods")
    @classmethod
    def _methods(cls, methods: list[str]) -> list[str]:
        return _known_methods(methods)

    @field_validator("anchor_fractions")
    @classmethod
    def _fractions(cls, fractions: list[float]) -> list[float]:
        bad = [f for f in fractions if not 0 < f <= 1]
        if bad:
            raise ValueError(f"anchor fractions must be in (0, 1], got {bad}")
        return fractions


class EvaluateConfig(_Frozen):
    """Cross-validation and classifiers (docs/method.md 5.1-5.3, 7.3, 7.6).

    Attributes:
        folds: stratified folds, consistent across networks (same IP, same fold).
        seed: seed of the folds, the validation split and the classifiers.
        val_fraction: stratified share of the training folds held out for model selection (never the test fold).
        knn_k: neighbours of the leave-one-out kNN.
        min_class_size: hosts a class needs in a day for the kNN evaluation; smaller classes become `unknown`
            (11 = the authors' "more than 10"; 10 = the DarkVec code's "at least 10").
        dnn_hidden: hidden layer widths of the DNN classifier.
        dnn_epochs: training epochs at most; the weights of the lowest validation loss are kept.
        dnn_batch_size: DNN mini-batch (hosts).
        dnn_dropout: dropout after each hidden ReLU.
        dnn_lr: Adam learning rate of the DNN.
        dnn_patience: stop after this many epochs without a better validation loss; None = all epochs.
        abstain: open-set answers beside the closed-world ones: each prediction gets a confidence and the answer
            `unknown` below its class's threshold (docs/open-set.md); the closed-world scores are unchanged.
        abstain_k: neighbours of the confidence (labelled and background training hosts).
        abstain_quantile: share of the correct validation answers (of each class, or of all with `pooled`
            thresholds) left below the threshold.
        abstain_thresholds: `pooled` = one threshold for every class (default); `class` = one per predicted class
            (classes with too few validation hosts take the pooled one).
        abstain_activity: add the tested network's activity gate to the confidence (a classifier of its own
            hosts' traffic features, labelled vs unlabelled, trained on its training folds; needs
            `abstain_calibration: customer`).
        abstain_calibration: whose validation hosts (of the training folds) set the thresholds: `customer` = the
            customer's labelled ones, mapped as its test hosts are (they carry the alignment's shift); `provider`
            = the classifier's own validation hosts (in its space, no shift).
        abstain_score: the confidence: `neighbour` = the background-relative neighbour score; `gate` = the
            log-odds of a known-vs-unknown gate trained on the reference network's training hosts (labelled vs
            unlabelled; docs/open-set.md).
    """

    folds: int = Field(default=5, ge=2)
    seed: int = 15
    val_fraction: float = Field(default=0.1, gt=0, lt=1)
    knn_k: int = Field(default=3, ge=1)
    min_class_size: int = Field(default=11, ge=1)
    dnn_hidden: list[int] = Field(default_factory=lambda: [512, 256])
    dnn_epochs: int = Field(default=50, ge=1)
    dnn_batch_size: int = Field(default=128, ge=1)
    dnn_dropout: float = Field(default=0.3, ge=0, lt=1)
    dnn_lr: float = Field(default=1e-3, gt=0)
    dnn_patience: int | None = Field(default=None, ge=1)
    abstain: bool = True
    abstain_k: int = Field(default=10, ge=1)
    abstain_quantile: float = Field(default=0.02, ge=0, lt=1)
    abstain_calibration: Literal["customer", "provider"] = "customer"
    abstain_score: Literal["neighbour", "gate"] = "neighbour"
    abstain_thresholds: Literal["pooled", "class"] = "pooled"
    abstain_activity: bool = True

    @model_validator(mode="after")
    def _activity_needs_customer_calibration(self) -> EvaluateConfig:
        if self.abstain and self.abstain_activity and self.abstain_calibration != "customer":
            raise ValueError(
                "evaluate.abstain_activity scores the customer's hosts by the customer's own traffic, so its "
                "thresholds must be set on the customer's validation hosts: set evaluate.abstain_calibration: "
                "customer, or evaluate.abstain_activity: false"
            )
        return self


class ClusterConfig(_Frozen):
    """HDBSCAN on a network's host embeddings (docs/method.md 5.7, 7.6).

    Attributes:
        min_cluster_size: HDBSCAN's smallest cluster.
        min_samples: HDBSCAN's core-distance neighbours; None = `min_cluster_size`.
        reduce_dims: PCA components computed (on the L2-normalised vectors) before HDBSCAN, which is slow in
            high dimensions; None clusters the full vectors.
        selection: HDBSCAN's cluster selection, `leaf` (finest clusters, many noise hosts, as in [TNSM] Table V)
            or `eom` (HDBSCAN's default; on i-DarkVec spaces one cluster tends to hold most hosts).
        explained_share: a cluster is explained by a label that at least this share of its hosts carry.
        review_top: the largest clusters of mostly unknown hosts profiled for an analyst (table + activity
            figure each) by the adapt stage.
    """

    min_cluster_size: int = Field(default=5, ge=2)
    min_samples: int | None = Field(default=None, ge=1)
    reduce_dims: int | None = Field(default=32, ge=2)
    selection: Literal["leaf", "eom"] = "leaf"
    explained_share: float = Field(default=0.5, gt=0, le=1)
    review_top: int = Field(default=10, ge=0)


class ExchangeConfig(_Frozen):
    """Signing and trust of the provider-customer exchange bundles (docs/security.md).

    Attributes:
        signing_key: the provider's Ed25519 private key file (PEM, `darkembed keygen`); `$DARKEMBED_SIGNING_KEY`
            wins over it. Unset: the pipeline creates and keeps one at `<data_root>/keys/exchange-ed25519.pem`.
        trusted_keys: the providers' public keys a customer accepts bundles from: `ed25519:<base64>` text or
            paths of `.pub` files.
        allow_unsigned: accept bundles without a signature (or without a key to check it) with a warning; a
            signature that fails under a trusted key is refused even then.
    """

    signing_key: str | None = None
    trusted_keys: list[str] = Field(default_factory=list)
    allow_unsigned: bool = False


class ComputeConfig(_Frozen):
    """Where the torch models (aligners, classifiers, GNNs) run.

    Attributes:
        device: `auto` (CUDA when torch sees a GPU, else CPU), `cpu`, `cuda` or `cuda:<i>`; chosen once per run.
    """

    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")


class ReportConfig(_Frozen):
    """Figures of the adaptation stage.

    Attributes:
        tsne: when the t-SNE maps of the customer's hosts are drawn (they cost more than the rest of the stage's
            figures together): `last` = on the last day of a backfill (and a single nightly or transfer run),
            `always` = every day, `never`.
    """

    tsne: Literal["last", "always", "never"] = "last"


class Config(_Frozen):
    """The whole resolved configuration of a darkembed run."""

    data_root: str = "var/data"
    seed: int = 15
    tracking: TrackingConfig = TrackingConfig()
    networks: list[NetworkConfig] = Field(default_factory=list)
    pairs: list[PairConfig] = Field(default_factory=list)
    ingest: IngestConfig = IngestConfig()
    activity: ActivityConfig = ActivityConfig()
    corpus: CorpusConfig = CorpusConfig()
    graph: GraphConfig = GraphConfig()
    w2v: W2VConfig = W2VConfig()
    embed: EmbedConfig = EmbedConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    gnn: GnnConfig = GnnConfig()
    simulate: SimulateConfig = SimulateConfig()
    labels: LabelsConfig = LabelsConfig()
    adapt: AdaptConfig = AdaptConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    cluster: ClusterConfig = ClusterConfig()
    exchange: ExchangeConfig = ExchangeConfig()
    compute: ComputeConfig = ComputeConfig()
    report: ReportConfig = ReportConfig()
    experiment: ExperimentConfig | None = None

    @field_validator("networks")
    @classmethod
    def _some_network(cls, networks: list[NetworkConfig]) -> list[NetworkConfig]:
        if not networks:
            raise ValueError("empty: declare at least one network (see conf/default.yaml)")
        return networks

    @model_validator(mode="after")
    def _check_names(self) -> Config:
        names = [n.name for n in self.networks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"network names must be unique, repeated: {', '.join(dupes)}")
        for pair in self.pairs:
            for side in (pair.provider, pair.customer):
                if side not in names:
                    raise ValueError(f"pair names network {side!r}, which is not declared under networks")
        if self.adapt.customer_history == "day" and set(self.adapt.methods) != {"idarkvec"}:
            raise ValueError(
                "adapt.customer_history 'day' retrains the customer's i-DarkVec on the day alone: set adapt.methods "
                f"to [idarkvec] (got {self.adapt.methods})"
            )
        return self

    def network(self, name: str) -> NetworkConfig:
        """The network called `name`, or a `ConfigError` listing the declared ones."""
        for n in self.networks:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.networks) or "none"
        raise ConfigError(f"unknown network {name!r}; declared networks: {known}")

    @property
    def data_path(self) -> Path:
        return Path(self.data_root)

    def hash(self) -> str:
        """A short stable hash of the resolved configuration (names model versions and manifests)."""
        return _digest(self.model_dump(mode="json"))

    def stage_hash(self, stage: str, network: str | None = None, method: str | None = None) -> str:
        """The hash of what one stage's partitions depend on, written to their manifests.

        A partition is current while this hash is unchanged: changing the evaluation, the clustering, the pairs or
        the experiment's title does not invalidate a month of embeddings, and changing `gnn` re-embeds the GNN
        methods but not i-DarkVec. Stages: `packets`, `labels`, `corpus`, `graph`, `reports`, and `embeddings` /
        `models` (with `method`); anything else (`results`) depends on the whole configuration but where it is
        stored, how runs are tracked and orchestrated, and the experiment's name and title.

        Args:
            stage: dataset name.
            network: the network whose partition it is (only its entry of `networks` counts).
            method: the embedding method, for `embeddings` and `models`.
        """
        data = self.model_dump(mode="json")
        for (section, key), neutral in _HASH_NEUTRAL.items():
            if data[section].get(key) == neutral:
                del data[section][key]
        if stage not in _STAGE_SECTIONS and stage not in ("embeddings", "models"):
            return _digest({k: v for k, v in data.items() if k not in _NOT_RESULTS})
        if stage in ("embeddings", "models"):
            if method is None:
                raise ValueError(f"the {stage} stage hash needs the embedding method")
            sections = _STAGE_SECTIONS["corpus" if method == "idarkvec" else "graph"]
            sections = (*sections, "w2v" if method == "idarkvec" else "gnn")
        else:
            sections = _STAGE_SECTIONS[stage]
        picked = {k: data[k] for k in sections}
        picked["networks"] = [n for n in data["networks"] if network is None or n["name"] == network]
        picked["method"] = method
        if stage == "models":
            picked["checkpoint_format"] = CHECKPOINT_FORMAT
        return _digest(picked)

    def flat(self, section: str | None = None) -> dict[str, Any]:
        """The configuration (or one section) flattened to dotted keys, for MLflow params."""
        data = self.model_dump(mode="json")
        if section is not None:
            data = {section: data[section]}
        return _flatten(data)


#: Version of the model checkpoints' file format, part of the `models` stage hash: a data root written by an
#: earlier format is stale, not complete-but-unloadable. 2: JSON + safetensors (format 1 was gensim's and torch's
#: pickles, which are never loaded: see docs/security.md).
CHECKPOINT_FORMAT = 2

#: Configuration sections each stage's partitions depend on (beside the network's own entry).
_STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "packets": ("seed", "simulate", "ingest"),
    "labels": ("seed", "simulate", "ingest", "labels"),
    "corpus": ("seed", "simulate", "ingest", "activity", "corpus"),
    "graph": ("seed", "simulate", "ingest", "activity", "graph"),
    "reports": ("seed", "simulate", "ingest", "labels"),
}


#: Sections that never change what a stage computes.
_NOT_RESULTS = ("data_root", "tracking", "orchestration", "experiment", "exchange", "compute", "report")
#: Settings added after partitions were first written, left out of every stage hash while they hold this value
#: (the behaviour from before they existed), so that upgrading does not make a month of checkpoints stale.
_HASH_NEUTRAL: dict[tuple[str, str], Any] = {("gnn", "absent_days"): "zero"}


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, list) and obj and all(isinstance(v, Mapping) for v in obj):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = obj
    return out


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay `overlay` on `base`: nested mappings merge, everything else replaces."""
    out = dict(base)
    for k, v in overlay.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def default_config_text() -> str:
    """The text of the embedded default configuration."""
    return resources.files("darkembed").joinpath("default.yaml").read_text()


#: A configuration file larger than this is refused unread (configs are a few kilobytes).
MAX_CONFIG_BYTES = 1 << 20
#: Nodes a YAML document may expand to once its aliases are followed (an "alias bomb" expands exponentially).
MAX_YAML_NODES = 100_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key repeated in one mapping (YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # keys merged in with `<<` may be overridden: that is what merging is for
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first + 1})", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, limit: int) -> int:
    """Nodes of the document once every alias is expanded, counted without expanding (shared nodes are
    counted once per reference from their memoised size); stops above `limit`."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            if sizes[id(n)] < 0:
                raise ValueError("an alias refers to a node that contains it (a recursive structure)")
            return sizes[id(n)]
        sizes[id(n)] = -1
        total = 1
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [c for kv in n.value for c in kv]
        else:
            children = []
        for c in children:
            total += size(c)
            if total > limit:
                break
        sizes[id(n)] = total
        return total

    return size(node)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
    return ConfigError(f"{path}:{where} invalid YAML: {getattr(exc, 'problem', None) or exc}")


def _read_yaml(path: Path) -> dict[str, Any]:
    """One configuration file as a mapping, or a `ConfigError` naming the file and the line.

    Refused: files over `MAX_CONFIG_BYTES`, text that is not UTF-8, invalid YAML, a key repeated in one mapping,
    aliases that expand the document beyond `MAX_YAML_NODES` nodes, and a top level that is not a mapping.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB: not a configuration file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}
        try:
            n = _expanded_size(node, MAX_YAML_NODES)
        except (ValueError, RecursionError) as exc:
            msg = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            raise ConfigError(f"{path}: refused: {msg}") from None
        if n > MAX_YAML_NODES:
            raise ConfigError(
                f"{path}: refused: its aliases (*name) expand it to more than {MAX_YAML_NODES:,} values; "
                "a configuration needs far fewer (is it an alias bomb?)"
            )
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, not {type(data).__name__}")
    return data


def _has_path(data: Any, loc: tuple[Any, ...]) -> bool:
    for k in loc:
        in_mapping = isinstance(data, Mapping) and k in data
        in_list = isinstance(data, list) and isinstance(k, int) and 0 <= k < len(data)
        if not (in_mapping or in_list):
            return False
        data = data[k]
    return True


def _origin(sources: list[tuple[str, Mapping[str, Any]]], loc: tuple[Any, ...]) -> str:
    """The source that set the value at `loc`: the last one whose data has the path (lists replace, so the
    index path of a list item lies in the source that set the list)."""
    for i in range(len(loc), 0, -1):
        found = [name for name, data in sources if _has_path(data, loc[:i])]
        if found:
            return found[-1]
    return " + ".join(name for name, _ in sources)


def load_config(*paths: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> Config:
    """Load the embedded default, overlay each file in `paths` and then `overrides`, and validate.

    Raises:
        ConfigError: a file cannot be read or parsed, or a key is unknown or has a bad value; the message names
            the file that set the key, and the dotted key.
    """
    default: dict[str, Any] = yaml.safe_load(default_config_text()) or {}
    sources: list[tuple[str, Mapping[str, Any]]] = [("<embedded default>", default)]
    # Machine settings from the environment replace the embedded default's; a file that names them explicitly
    # (e.g. an experiment's own data root) still wins.
    env: dict[str, Any] = {}
    env_root = os.environ.get("DARKEMBED_DATA_ROOT")
    if env_root:
        env["data_root"] = env_root
    env_uri = os.environ.get("DARKEMBED_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI")
    if env_uri:
        env["tracking"] = {"uri": env_uri}
    if env:
        sources.append(("<environment>", env))
    sources += [(str(p), _read_yaml(Path(p))) for p in paths]
    if overrides:
        sources.append(("<overrides>", overrides))
    data: dict[str, Any] = {}
    for _, layer in sources:
        data = merge(data, layer)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(x) for x in loc) or "<top level>"
            msg = (
                "unknown key"
                if err["type"] == "extra_forbidden"
                else err["msg"].removeprefix("Value error, ")
            )
            problems.append(f"  {_origin(sources, loc)}: {key}: {msg}")
        raise ConfigError("invalid configuration:\n" + "\n".join(problems)) from None
