"""Test settings: the real settings, with the test database chosen by reachability.

PostgreSQL at TEST_DATABASE_URL (default: the local server) is used when it
answers; otherwise SQLite, and the tests marked `postgres` skip. Under CI=true
an unreachable PostgreSQL is an error instead.
"""

import os

import dj_database_url
import psycopg

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
# A loaded CI machine runs late now and then: only the overload tests (which
# set their own) should see sends refused as `overloaded`. Servers the tests
# start inherit it.
os.environ.setdefault("CHAT_MAX_SEND_LAG", "5")

from chatsite.settings import *  # noqa: F403
from chatsite.settings import VAR_DIR

CI = os.environ.get("CI") == "true"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chat")


def _postgres_error(url: str) -> str | None:
    config = dj_database_url.parse(url)
    try:
        psycopg.connect(
            host=config["HOST"],
            port=config["PORT"] or 5432,
            user=config["USER"],
            password=config["PASSWORD"],
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


POSTGRES_UNAVAILABLE = _postgres_error(TEST_DATABASE_URL)
if POSTGRES_UNAVAILABLE and CI:
    raise RuntimeError(f"CI=true but PostgreSQL is unreachable: {POSTGRES_UNAVAILABLE}")
if POSTGRES_UNAVAILABLE:
    DATABASES = {  # a file, so that server processes started by tests share it
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "test.sqlite3"),
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }
else:
    DATABASES = {"default": dj_database_url.parse(TEST_DATABASE_URL)}

# Consumer tests run on the in-memory layer; the Redis tests choose their own.
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}
}
CHAT_ALLOW_GUESTS = False
# Fast hashes for test users; PBKDF2 too, for users who sign in to a server process.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Tasks run in the test's process (chat/taskqueue.py); the tests of the worker start one.
CELERY_BROKER_URL = ""
