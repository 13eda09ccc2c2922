"""The deployment: docker-compose.yml's services, run natively (no Docker
engine here) from the file's own commands and environment, behind Debian's
nginx configured from deploy/nginx.conf; and the operations endpoints and the
graceful stop they rely on."""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import websockets
import yaml
from celery import Celery
from channels.db import database_sync_to_async
from django.utils import timezone

from chat.models import Message
from chat_client.client import ChatClient
from tests.conftest import (
    REDIS_URL,
    ROOT,
    TIMEOUT,
    ServerProcess,
    WsClient,
    database_url,
    free_port,
    unavailable,
)
from tests.factories import room_make

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SBIN_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


def dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, from `env`."""

    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        assert op != ":?", f"compose needs {name}: {arg}"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def service(name: str, *, overrides: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """A compose service's command and environment, as .env.example would make
    them, with `overrides` for what differs here (hosts, paths). Each override
    must be a variable the service really sets."""
    spec = COMPOSE["services"][name]
    dot = dotenv(ROOT / ".env.example")
    environment = {k: interpolate(str(v), dot) for k, v in spec["environment"].items()}
    assert set(overrides) <= set(environment), set(overrides) - set(environment)
    env = {**os.environ, **environment, **overrides}
    # `python`, `daphne` and `sh -c "python ..."` resolve to this venv, as to the image's.
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the image sets none: chatsite.settings
    return [str(part) for part in spec["command"]], env


def test_the_compose_file_is_valid_and_scales():
    compose = shutil.which("docker-compose", path=SBIN_PATH)
    if compose is None:
        unavailable("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        [compose, "--env-file", ".env.example", "config", "-q"], cwd=ROOT, capture_output=True
    )
    assert result.returncode == 0, result.stderr.decode()
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat", "proxy"}
    # --scale web=N: nothing may pin a replica to a name or a host port.
    assert not any("container_name" in spec for spec in services.values())
    assert "ports" not in services["web"] and services["web"]["deploy"]["replicas"] >= 2
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "--proxy-headers" in services["web"]["command"]
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert services[name]["healthcheck"]["test"], name
    assert "inspect ping" in services["worker"]["healthcheck"]["test"][1]


@pytest.fixture
def deployment(transactional_db, tmp_path):
    """Start compose services natively: start(name, port=None) -> the process."""
    processes: list[ServerProcess | subprocess.Popen] = []
    static_root = tmp_path / "static"
    prefix = f"deploy-{uuid.uuid4().hex[:8]}"
    overrides = {
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL,
        "STATIC_ROOT": str(static_root),
        # Several test runs may share one Redis: a prefix of this test's own.
        "CHAT_ALLOW_GUESTS": "1",
    }

    class Deployment:
        static = static_root
        layer_prefix = prefix

        def migrate(self) -> None:
            command, env = service("migrate", overrides=overrides)
            env["CHANNEL_LAYER_PREFIX"] = prefix
            subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)

        def web(self, **env_extra: str) -> ServerProcess:
            command, env = service("web", overrides=overrides)
            env.update(CHANNEL_LAYER_PREFIX=prefix, **env_extra)

            def argv(port: int) -> list[str]:
                args = list(command)
                args[args.index("-p") + 1] = str(port)
                args[args.index("-b") + 1] = "127.0.0.1"
                return args

            log = tmp_path / f"web-{len(processes)}.log"
            server = ServerProcess(log_path=log, env=env, argv=argv)
            processes.append(server)
            return server.start()

        def celery(self, name: str, **env_extra: str) -> tuple[subprocess.Popen, dict]:
            """Compose's `worker` or `beat`: its command and environment, and its log."""
            command, env = service(name, overrides=overrides)
            env.update(CHANNEL_LAYER_PREFIX=prefix, **env_extra)
            if "--schedule" in command:
                command[command.index("--schedule") + 1] = str(tmp_path / "beat-schedule")
            log = (tmp_path / f"{name}.log").open("ab")
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
            processes.append(proc)
            return proc, env

        def proxy(self, *servers: ServerProcess) -> str:
            return start_nginx(tmp_path, processes, servers, static_root)

    yield Deployment()
    for process in reversed(processes):
        if isinstance(process, ServerProcess):
            process.stop()
        elif process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def start_nginx(tmp_path: Path, processes: list, servers, static_root: Path) -> str:
    """Debian's nginx with deploy/nginx.conf, its upstreams templated; returns its URL."""
    nginx = shutil.which("nginx", path=SBIN_PATH)
    if nginx is None:
        unavailable("nginx is not installed (apt-get install nginx)")
    port = free_port()
    values = {
        "LISTEN_PORT": f"127.0.0.1:{port}",
        "UPSTREAM_SERVERS": " ".join(f"server 127.0.0.1:{s.port};" for s in servers),
        "STATIC_ROOT": str(static_root),
    }
    site = re.sub(
        r"\$\{(\w+)\}", lambda m: values[m.group(1)], (ROOT / "deploy/nginx.conf").read_text()
    )
    (tmp_path / "site.conf").write_text(site)
    temp = tmp_path / "nginx"
    temp.mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"""{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {temp}/nginx.pid;
error_log {temp}/error.log;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    access_log {temp}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {tmp_path}/site.conf;
}}
"""
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(temp), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    processes.append(proc)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/readyz", proc)
    return url


def wait_http(url: str, proc: subprocess.Popen) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)  # polling a port that is not open yet: there is no event
    raise AssertionError(f"{url} did not answer")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def sockets_open(server: ServerProcess) -> float:
    status, body = get(server.http_url + "/metrics")
    assert status == 200
    return float(re.search(rb"^chat_sockets_open (\S+)$", body, re.M).group(1))


@pytest.mark.postgres
async def test_the_compose_services_work_together_behind_nginx(deployment, make_user):
    await database_sync_to_async(lambda: room_make(slug="lobby", creator=make_user("o")))()
    await asyncio.to_thread(deployment.migrate)
    assert (deployment.static / "chat/main.js").exists()  # collectstatic ran
    web1, web2 = await asyncio.to_thread(deployment.web), await asyncio.to_thread(deployment.web)
    url = await asyncio.to_thread(deployment.proxy, web1, web2)
    ws_url = url.replace("http", "ws") + "/ws/chat/"

    health = json.loads((await asyncio.to_thread(get, url + "/healthz"))[1])
    assert health == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    status, script = await asyncio.to_thread(get, url + "/static/chat/main.js")
    assert status == 200 and b"import" in script  # nginx serves the collected files
    assert (await asyncio.to_thread(get, url + "/metrics"))[0] == 404

    ada = await WsClient.open(ws_url + "?name=ada")
    bo = await WsClient.open(ws_url + "?name=bo")
    # Round robin put them on different replicas.
    assert (sockets_open(web1), sockets_open(web2)) == (1.0, 1.0)
    for client in (ada, bo):
        await client.send({"type": "join", "room": "lobby"})
        await client.expect("joined")
    await ada.send(
        {"type": "send", "room": "lobby", "body": "across", "client_id": str(uuid.uuid4())}
    )
    heard = await bo.expect("message")
    assert (heard["body"], heard["author"]["name"]) == ("across", "ada")
    await ada.close()
    await bo.close()


@pytest.mark.postgres
async def test_a_rolling_restart_loses_and_doubles_nothing(deployment, make_user):
    """SIGTERM one replica during a stream of sends: its clients are told 1012,
    reconnect through the proxy to the other, and recover with `since`."""
    await database_sync_to_async(lambda: room_make(slug="lobby", creator=make_user("o")))()
    # One fast sender: above the default rate limit, whose refusals it would
    # retry later, out of order.
    fast = {
        "CHAT_SEND_BURST": "1000", "CHAT_SEND_PER_MINUTE": "60000",
        "CHAT_IP_SEND_BURST": "1000", "CHAT_IP_SEND_PER_MINUTE": "60000",
    }  # fmt: skip
    web1 = await asyncio.to_thread(deployment.web, **fast)
    web2 = await asyncio.to_thread(deployment.web, **fast)
    url = (await asyncio.to_thread(deployment.proxy, web1, web2)).replace("http", "ws")
    sender = ChatClient(url + "/ws/chat/?name=sender", rooms=["lobby"])
    readers = [ChatClient(url + f"/ws/chat/?name=reader{i}", rooms=["lobby"]) for i in range(3)]
    clients = [sender, *readers]
    tasks = [asyncio.create_task(client.run()) for client in clients]
    for client in clients:
        await asyncio.wait_for(client.joined.wait(), TIMEOUT)
    assert sockets_open(web1) >= 1 and sockets_open(web2) >= 1

    total = 120
    for i in range(total):
        await sender.send("lobby", f"m{i}")
        if i == total // 3:
            web1.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.02)  # a steady stream, not a synchronisation
    assert await asyncio.to_thread(web1.proc.wait, TIMEOUT) == 0  # drained and exited
    for client in clients:
        await client.wait_for(lambda c=client: len(c.messages["lobby"]) == total, timeout=60)
    for client in clients:
        await client.stop()
    await asyncio.gather(*tasks)

    bodies = [m.body async for m in Message.objects.order_by("seq")]
    assert bodies == [f"m{i}" for i in range(total)]  # each stored once, in order
    for client in clients:
        assert client.seqs("lobby") == list(range(1, total + 1))
        assert client.stats["resent"] == 0
    assert sum(client.stats["connects"] for client in clients) > len(clients)  # some moved


async def test_sigterm_closes_sockets_with_1012_and_exits(start_server):
    server = start_server()
    client = await WsClient.open(server.ws_url + "?name=ada")
    await client.send({"type": "join", "room": "lobby"})
    await client.expect("joined")
    server.proc.send_signal(signal.SIGTERM)
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        await client.recv(timeout=TIMEOUT)
    assert closed.value.rcvd.code == 1012
    assert await asyncio.to_thread(server.proc.wait, TIMEOUT) == 0


async def test_healthz_follows_redis(start_server, redis_process):
    server = start_server(redis_url=redis_process.url)

    def health() -> tuple[int, dict]:
        status, body = get(server.http_url + "/healthz")
        return status, json.loads(body)

    assert await asyncio.to_thread(health) == (
        200, {"status": "ok", "checks": {"database": "ok", "redis": "ok"}},
    )  # fmt: skip
    redis_process.stop()
    status, body = await asyncio.to_thread(health)
    assert status == 503 and body["checks"]["redis"].startswith("error:")
    assert body["checks"]["database"] == "ok"
    redis_process.start()
    assert (await asyncio.to_thread(health))[0] == 200


@pytest.mark.postgres
async def test_the_worker_and_beat_run_from_the_compose_file(deployment, make_user, redis_process):
    def old_and_new() -> None:
        room = room_make(slug="lobby", creator=make_user("o"))
        for seq, age in ((1, 3), (2, 0)):
            Message.objects.create(
                room=room, seq=seq, author_name="o", body=f"{age} days old", client_id=uuid.uuid4()
            )
        Message.objects.filter(seq=1).update(created=timezone.now() - timedelta(days=3))
        room.last_seq = 2
        room.save()

    await database_sync_to_async(old_and_new)()
    # A Redis of its own: the broker's queue holds no other test's tasks.
    _, env = deployment.celery("worker", CHAT_RETENTION_DAYS="2", REDIS_URL=redis_process.url)
    beat, _ = deployment.celery("beat", REDIS_URL=redis_process.url)
    # The worker's health check, as compose runs it (with the container's HOSTNAME).
    check = COMPOSE["services"]["worker"]["healthcheck"]["test"][1].replace("$$", "$")
    env["HOSTNAME"] = socket.gethostname()
    async with asyncio.timeout(60):
        while (await asyncio.to_thread(subprocess.run, check, shell=True, cwd=ROOT, env=env,
                                       capture_output=True)).returncode:  # fmt: skip
            pass  # it fails until the worker is up: each try waits on its --timeout
    # Beat would enqueue it within the hour: enqueue it as beat does, by name.
    Celery(broker=redis_process.url).send_task("chat.tasks.retention_prune")
    async with asyncio.timeout(30):
        while not await Message.objects.filter(seq=1, deleted=True).aexists():  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # the task runs in another process: poll its effect
    rows = [(m.seq, m.body, m.deleted) async for m in Message.objects.order_by("seq")]
    assert rows == [(1, "", True), (2, "0 days old", False)]
    assert beat.poll() is None  # beat is running its schedule
    assert "beat: Starting" in (deployment.static.parent / "beat.log").read_text()


def manage_check(*args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    """`manage.py check` with web's compose environment (.env.example), changed by overrides."""
    _, env = service("web", overrides={})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args], cwd=ROOT, env=env, capture_output=True
    )


STRONG = "k" + uuid.uuid4().hex + uuid.uuid4().hex


def test_check_deploy_is_clean_under_the_compose_settings_served_over_https():
    result = manage_check(
        "--deploy", "--fail-level", "WARNING",
        SECRET_KEY=STRONG, ALLOWED_HOSTS="chat.example.com", HTTPS="1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert b"no issues" in result.stdout
    # Over plain HTTP the cookies cannot be Secure, and the check says so.
    plain = manage_check("--deploy", SECRET_KEY=STRONG, ALLOWED_HOSTS="chat.example.com")
    assert b"security.W012" in plain.stderr and b"security.W016" in plain.stderr


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"SECRET_KEY": "", "ALLOWED_HOSTS": "chat.example.com"}, b"set SECRET_KEY"),
        ({"ALLOWED_HOSTS": "chat.example.com"}, b"set SECRET_KEY"),  # .env.example's placeholder
        ({"ALLOWED_HOSTS": "chat.example.com", "DEBUG": "1", "SECRET_KEY": STRONG}, b"DEBUG"),
        # Shorter than 32 characters, or fewer than 5 distinct ones (check --deploy's rule).
        ({"ALLOWED_HOSTS": "chat.example.com", "SECRET_KEY": "x"}, b"32 or more"),
        ({"ALLOWED_HOSTS": "chat.example.com", "SECRET_KEY": "abcd" * 20}, b"32 or more"),
    ],
)
def test_public_hosts_refuse_a_known_key_or_debug(env, complaint):
    result = manage_check(**env)
    assert result.returncode != 0 and complaint in result.stderr
