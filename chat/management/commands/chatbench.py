"""`manage.py chatbench`: start servers, drive them with chat/management/bench/loadgen.py in a
process of its own, print a table and write JSON. docs/performance.md."""

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.management.bench.core import open_files_max
from chat.management.bench.servers import KINDS, Servers, database_create, machine

ALL = ("fanout", "publish", "idle", "joinstorm", "sweep", "latency", "bigroom", "overload")
# What the tutorial's chat can be measured on: it has no acks, history or joins;
# and GraphQL's subscriptions (the same daphne, its clients on /graphql/).
ONLY = {
    "tutorial": ("fanout", "sweep", "latency", "idle"),
    "graphql": ("fanout", "sweep", "latency"),
}
HELD_P99_MS = 100  # the sweep's bar: a step is held with p99 under this, nothing lost or doubled

# Columns of the table: (heading, key in a result, width).
COLUMNS = [
    ("workload", "workload", 16),
    ("offered/s", "offered_per_s", 9),
    ("acked/s", "acked_per_s", 8),
    ("deliv/s", "deliveries_per_s", 8),
    ("p50 ms", "p50_ms", 8),
    ("p99 ms", "p99_ms", 8),
    ("max ms", "max_ms", 8),
    ("lost", "lost", 5),
    ("dup", "doubled", 4),
    ("conns", "connections", 6),
    ("conn/s", "connects_per_s", 7),
    ("cpu", "server_cpu", 5),
    ("gen", "generator_cpu", 5),
    ("RSS MiB", "rss_mib", 8),
    ("KiB/sock", "kib_per_socket", 8),
    ("ack p99", "ack_p99_ms", 8),
    ("join p99", "join_p99_ms", 8),
    ("refused", "refused", 7),
    ("frame KiB", "max_frame_kib", 9),
    ("ratio", "ratio", 6),
]


class Command(BaseCommand):
    help = (
        "Benchmark the chat server: fan-out, publish, idle sockets, a join storm and a"
        " step sweep; prints a table and writes JSON (docs/performance.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add = parser.add_argument
        add("--workloads", default=",".join(ALL), help=f"comma-separated, of: {', '.join(ALL)}")
        add("--url", action="append", default=[], help="target running servers (repeatable)")
        add(
            "--server",
            default="daphne",
            help=f"comma-separated, of: {', '.join(KINDS)}; each workload runs on each in"
            " turn (tutorial: the Channels tutorial's chat, fanout, sweep, latency and idle only;"
            " graphql: the app under daphne, its clients GraphQL subscribers, fanout, sweep"
            " and latency only)",
        )
        add("--servers", type=int, default=1, help="server processes to start")
        add("--layer", choices=["redis", "memory"], default="redis")
        add("--redis-url", default="redis://127.0.0.1:6379/0")
        add("--database-url", default="", help="default: a new SQLite file")
        add("--no-pin", action="store_true", help="do not pin processes to cores")
        add("--duration", type=float, default=10.0, help="seconds of load per workload")
        add("--rooms", type=int, default=10, help="fan-out rooms")
        add("--members", type=int, default=20, help="fan-out members per room")
        add("--rate", type=int, default=10_000, help="fan-out deliveries/s offered")
        add("--publish-rooms", type=int, default=100)
        add("--publish-members", type=int, default=2)
        add("--window", type=int, default=2, help="unacked sends per publishing member")
        add("--idle", type=int, default=10_000, help="idle sockets")
        add("--storm", type=int, default=1_000, help="join-storm clients")
        add("--history", type=int, default=50, help="messages in the join-storm room")
        add("--sweep", default="2000:30000:2000", help="FROM:TO:STEP deliveries/s")
        add("--messages", type=int, default=200, help="latency: single messages to time")
        add("--bigroom", type=int, default=10_000, help="bigroom: members of the one room")
        add(
            "--overload",
            type=int,
            default=0,
            help="overload: deliveries/s offered (default: twice the sweep's held, else --rate)",
        )
        add("--tiny", action="store_true", help="a seconds-long run at toy sizes (CI)")
        add("--json", default="var/chatbench.json", help="where to write the results")
        add(
            "--profile",
            metavar="DIR",
            help="record each server with py-spy (installed apart) into DIR/<workload>-<n>.txt",
        )

    def handle(self, *args, **opts) -> None:
        if opts["tiny"]:
            opts.update(
                duration=1.0,
                rooms=2,
                members=3,
                rate=60,
                publish_rooms=2,
                publish_members=2,
                idle=20,
                storm=10,
                history=5,
                sweep="30:60:30",
                messages=5,
                bigroom=20,
            )
        workloads = [w for w in opts["workloads"].split(",") if w]
        if unknown := set(workloads) - set(ALL):
            raise CommandError(f"unknown workloads: {', '.join(sorted(unknown))}")
        kinds = [k for k in opts["server"].split(",") if k]
        if unknown := set(kinds) - set(KINDS):
            raise CommandError(f"unknown servers: {', '.join(sorted(unknown))}")
        if opts["layer"] == "memory" and opts["servers"] > 1:
            raise CommandError("the in-memory layer cannot join several processes: --layer redis")
        self.opts = opts
        self.run_id = secrets.token_hex(3)
        with TemporaryDirectory(prefix="chatbench-") as tmp:
            self.tmp = Path(tmp)
            setup = self.setup()
            results = []
            for kind in kinds:
                self.kind = kind
                for workload in workloads:
                    if workload in ONLY.get(kind, (workload,)):
                        results += self.workload(workload)
            if "sweep" in workloads and "daphne" in kinds:
                results += [_ratio(results, kind) for kind in ONLY if kind in kinds]
        report = {"setup": setup, "machine": machine(), "results": results}
        path = Path(opts["json"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        self.stdout.write(self.table(setup, results))
        self.stdout.write(f"\nJSON: {path}")

    def setup(self) -> dict:
        """Migrate the database and build the servers' environment."""
        opts = self.opts
        database = opts["database_url"] or f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        if database.startswith("postgres"):
            database_create(database)
        cores = os.cpu_count() or 1
        # Each server a core, the generator another: else nobody is pinned.
        pin = not opts["no_pin"] and not opts["url"] and opts["servers"] < cores
        self.server_cores = [{i} for i in range(opts["servers"])] if pin else []
        self.generator_cores = {cores - 1} if pin else None
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DATABASE_URL": database,
            "REDIS_URL": opts["redis_url"] if opts["layer"] == "redis" else "",
            "CHANNEL_LAYER_PREFIX": f"bench{self.run_id}",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "DEBUG": "0",
            "CHAT_ALLOW_GUESTS": "1",
            # The generator is one address and its clients are guests: no send limits.
            "CHAT_SEND_BURST": "1000000",
            "CHAT_SEND_PER_MINUTE": "100000000",
            "CHAT_IP_SEND_BURST": "1000000",
            "CHAT_IP_SEND_PER_MINUTE": "100000000",
            "CHAT_MAX_GUEST_SOCKETS_PER_ADDRESS": "1000000",
            "BENCH_LOG_DIR": str(self.tmp),
        }
        if not opts["url"]:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                env=self.env,
                cwd=settings.BASE_DIR,
                check=True,
            )
        return {
            "server": "url" if opts["url"] else opts["server"],
            "servers": len(opts["url"]) or opts["servers"],
            "layer": opts["layer"],
            "database": urlparse(database).scheme,
            "pinned": bool(self.server_cores),
        }

    def rooms(self, prefix: str) -> list[str]:
        """The rooms a workload's guests may create (guests join only default rooms)."""
        o = self.opts
        count = max(o["rooms"], o["publish_rooms"], -(-o["idle"] // 10))
        return [f"{prefix}{i}" for i in range(count)] + [f"{prefix}room"]

    def workload(self, name: str) -> list[dict]:
        o = self.opts
        # Rows of the tutorial's chat and of GraphQL say so; the app's keep their names.
        tag = f" ({self.kind})" if self.kind in ONLY else ""
        if name == "sweep":
            start, stop, step = (int(x) for x in o["sweep"].split(":"))
            rows, held = [], 0
            for rate in range(start, stop + 1, step):
                row = self.measure("fanout", f"sweep@{rate}{tag}", rate=rate)
                rows.append(row)
                if not _held(row):
                    break
                held = rate
            rows.append({"workload": f"sweep held{tag}", "offered_per_s": held})
            self.held = held
            return rows
        if name == "overload":
            rate = o["overload"] or 2 * (getattr(self, "held", 0) or o["rate"] // 2)
            return [self.measure("overload", f"overload@{rate}", rate=rate)]
        return [self.measure(name, f"{name}{tag}")]

    def measure(self, workload: str, label: str, **extra) -> dict:
        """Run one workload on fresh servers; returns its row."""
        o = self.opts
        name = label.replace("@", "-").replace(" (tutorial)", "-t").replace(" (graphql)", "-g")
        prefix = f"b{self.run_id}-{name}-"
        spec = {
            "workload": workload,
            "prefix": prefix,
            "duration": o["duration"],
            "rooms": o["publish_rooms"] if workload == "publish" else o["rooms"],
            "members": o["publish_members"] if workload == "publish" else o["members"],
            "rate": o["rate"],
            "window": o["window"],
            "sockets": o["idle"],
            "clients": o["storm"],
            "history": o["history"],
            "messages": o["messages"],
            "bigroom": o["bigroom"],
            "protocol": self.kind if self.kind in ONLY else "chat",
            **extra,
        }
        servers = None
        if o["url"]:
            spec.update(urls=o["url"], pids=[])
        else:
            env = {**self.env, "CHAT_DEFAULT_ROOMS": ",".join(self.rooms(prefix))}
            servers = Servers(
                count=o["servers"], kind=self.kind, env=env, cores=self.server_cores
            ).start()
            spec.update(urls=servers.urls, pids=servers.pids)
        self.stderr.write(f"chatbench: {label} ...")
        profilers = servers.profile(self.opts["profile"], label) if servers else []
        try:
            generator = subprocess.run(
                [sys.executable, "-m", "chat.management.bench.loadgen", json.dumps(spec)],
                capture_output=True,
                text=True,
                cwd=settings.BASE_DIR,
                env=self.env,
                preexec_fn=self.pin_generator,
            )
        finally:
            for profiler in profilers:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                profiler.wait(timeout=60)
            if servers:
                servers.stop()
        if generator.returncode != 0:
            raise CommandError(f"{label}: the load generator failed:\n{generator.stderr[-3000:]}")
        row = {"workload": label, **json.loads(generator.stdout)}
        if row.get("rss_kib") is not None:
            row["rss_mib"] = round(row["rss_kib"] / 1024, 1)
        return row

    def pin_generator(self) -> None:
        open_files_max()
        if self.generator_cores:
            os.sched_setaffinity(0, self.generator_cores)

    def table(self, setup: dict, rows: list[dict]) -> str:
        title = (
            f"{setup['servers']} x {setup['server']}, {setup['layer']} layer,"
            f" {setup['database']}, {'pinned' if setup['pinned'] else 'not pinned'}"
        )
        lines = [title, " ".join(h.rjust(w) for h, _, w in COLUMNS)]
        for row in rows:
            cells = []
            for _, key, width in COLUMNS:
                value = row.get(key)
                cells.append(("" if value is None else str(value)).rjust(width))
            lines.append(" ".join(cells))
        return "\n".join(lines)


def _ratio(rows: list[dict], kind: str) -> dict:
    """Against the tutorial's chat: how many deliveries a second the app
    holds over what it holds. Of GraphQL: what its subscriptions hold over
    what the native socket holds."""
    held = {row["workload"]: row["offered_per_s"] for row in rows if "held" in row["workload"]}
    native, other = held.get("sweep held", 0), held.get(f"sweep held ({kind})", 0)
    if kind == "tutorial":
        return {"workload": "held ratio", "ratio": round(native / other, 2) if other else None}
    return {"workload": f"{kind} ratio", "ratio": round(other / native, 2) if native else None}


def _held(row: dict) -> bool:
    return (
        row.get("p99_ms") is not None
        and row["p99_ms"] < HELD_P99_MS
        and row["lost"] == 0
        and row["doubled"] == 0
        and row["unacked"] == 0
        and row["errors"] == 0
    )
