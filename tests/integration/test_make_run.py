"""`make run` as the README's Quick start gives it, in a scratch copy of the
project: it says the chat is running only once the server answers, and a
development start-up prints no SECRET_KEY warning."""

import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, free_port


def test_make_run_says_running_once_the_server_answers(tmp_path: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    copy = tmp_path / "chat"
    for name in files:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    port = free_port()
    # The embedded defaults, as on a fresh machine: none of the tests' services.
    ours = ("DATABASE_", "TEST_DATABASE_", "REDIS_", "CELERY_", "CHAT_", "DJANGO_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    for name in ("DEBUG", "SECRET_KEY", "CI"):
        env.pop(name, None)
    # -o: the shared venv is installed; the copy's newer pyproject.toml must not reinstall it.
    make = subprocess.Popen(
        ["make", "-o", ".venv/.installed", "run", f"PORT={port}"], cwd=copy, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    seen = []
    try:
        assert make.stdout is not None
        for line in make.stdout:
            seen.append(line)
            if "Chat is running" in line:
                # Said only now: the server answers at once.
                url = f"http://127.0.0.1:{port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.status == 200
                break
        else:
            raise AssertionError("make run ended without saying it runs:\n" + "".join(seen))
        assert f"open http://127.0.0.1:{port}/" in seen[-1]
        assert not any("SECRET_KEY" in line for line in seen), "".join(seen)
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=30)
