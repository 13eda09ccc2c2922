"""Settings read from the environment: a bad value is refused by name, not guessed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(**env: str) -> subprocess.CompletedProcess:
    """Import chatsite.settings in a fresh interpreter with these variables."""
    clean = {k: v for k, v in os.environ.items() if k not in env}
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "import chatsite.settings"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_defaults_load():
    assert load().returncode == 0


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"DEBUG": "ture"}, "DEBUG must be one of 1/true/yes/on or 0/false/no/off, not 'ture'"),
        ({"CHAT_HISTORY_PAGE": "fifty"}, "CHAT_HISTORY_PAGE must be a whole number, not 'fifty'"),
        ({"CHAT_SEND_BURST": "0"}, "CHAT_SEND_BURST must be at least 1, not 0"),
        ({"CHAT_SWEEP_SECONDS": "soon"}, "CHAT_SWEEP_SECONDS must be a number, not 'soon'"),
    ],
)
def test_a_bad_value_is_refused_naming_its_variable(env, said):
    loaded = load(**env)
    assert loaded.returncode != 0
    assert said in loaded.stderr


def test_every_bad_value_is_named_at_once():
    loaded = load(CHAT_ALLOW_GUESTS="maybe", CHAT_MAX_ROOMS_PER_SOCKET="-3")
    assert "CHAT_ALLOW_GUESTS must be" in loaded.stderr
    assert "CHAT_MAX_ROOMS_PER_SOCKET must be at least 1" in loaded.stderr


@pytest.mark.parametrize("value", ["1", "TRUE", "yes", "On", "0", "false", "NO", "off", ""])
def test_booleans_take_the_usual_spellings(value):
    assert load(CHAT_ALLOW_GUESTS=value).returncode == 0
