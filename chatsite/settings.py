"""Settings, all read from the environment here and nowhere else.

Every variable has an embedded default so that `make run` works with nothing
installed but Python: SQLite under `var/` and the in-memory channel layer.
The README's configuration table documents each variable.
"""

import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEV_SECRET_KEY = "dev-insecure-key-do-not-use-in-production"


# Every variable is checked as it is read; the problems are raised together at
# the end of this file, each naming its variable, so a typo cannot silently
# become a default (`DEBUG=ture`) or a traceback (`CHAT_HISTORY_PAGE=fifty`).
_problems: list[str] = []
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def env_bool(name: str, default: bool = False) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (any case)."""
    value = _env(name)
    if value is None:
        return default
    if value.lower() not in _TRUE | _FALSE:
        _problems.append(f"{name} must be one of 1/true/yes/on or 0/false/no/off, not {value!r}")
        return default
    return value.lower() in _TRUE


def env_list(name: str, default: str) -> list[str]:
    """A comma-separated list, dropping empty items."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole number, at least `minimum`."""
    return int(_env_number(name, default, int, minimum))


def env_float(name: str, default: float, *, minimum: float = 0) -> float:
    """A number of seconds (or any real number), at least `minimum`."""
    return float(_env_number(name, default, float, minimum))


def _env_number(name: str, default: float, kind: type[float], minimum: float) -> float:
    value = _env(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        _problems.append(f"{name} must be {noun}, not {value!r}")
        return default
    if number < minimum:
        _problems.append(f"{name} must be at least {minimum}, not {value}")
        return default
    return number


SECRET_KEY = os.environ.get("SECRET_KEY") or DEV_SECRET_KEY
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# WebSocket handshakes are accepted from these origins (`https://chat.example.com`);
# empty: from any page under ALLOWED_HOSTS.
CHAT_ALLOWED_ORIGINS = [o.lower().rstrip("/") for o in env_list("CHAT_ALLOWED_ORIGINS", "")]

# Served on public names (not only this machine), the site must not run with a
# known key or in debug mode: refuse to start rather than warn.
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}
PUBLIC = not set(ALLOWED_HOSTS) <= LOCAL_HOSTS
if PUBLIC and DEBUG:
    raise ImproperlyConfigured("DEBUG is on and ALLOWED_HOSTS names public hosts: turn DEBUG off")
# As Django's `check --deploy` (security.W009): at least 32 characters, at least 5 distinct.
WEAK_SECRET_KEY = len(SECRET_KEY) < 32 or len(set(SECRET_KEY)) < 5
if PUBLIC and (
    SECRET_KEY == DEV_SECRET_KEY or SECRET_KEY.startswith("change-me") or WEAK_SECRET_KEY
):
    raise ImproperlyConfigured(
        f"ALLOWED_HOSTS names public hosts ({', '.join(ALLOWED_HOSTS)}): set SECRET_KEY to"
        " a long random value (32 or more characters, at least 5 distinct), not the"
        " development key or .env.example's placeholder"
    )
# Development mode has a development key by design: say so only where it matters.
if SECRET_KEY == DEV_SECRET_KEY and not DEBUG:
    warnings.warn(
        "SECRET_KEY is not set: using the development key. Set SECRET_KEY in production.",
        stacklevel=1,
    )

INSTALLED_APPS = [
    "daphne",
    # Before admin: its templates for the password views (registration/) are chat's.
    "chat",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # For its static files: the API docs load Swagger UI from here, not a CDN.
    "ninja",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "chat.middleware.content_security_policy",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_default_database_url = f"sqlite:///{VAR_DIR / 'chat.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(os.environ.get("DATABASE_URL") or _default_database_url)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Channels closes the connection after every database_sync_to_async call
    # and Django's ASGI views run each request on a thread of its own: without
    # a pool, every query would open a new PostgreSQL connection (a backend
    # fork, milliseconds), and persistent connections would leak per thread.
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": 2,
            "max_size": env_int("DATABASE_POOL_SIZE", 10, minimum=1),
            "timeout": 10,
        }
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite allows one writer: IMMEDIATE makes a transaction take the write lock
    # at BEGIN, so concurrent senders queue instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    VAR_DIR.mkdir(exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# A prefix of its own lets several deployments share one Redis.
CHANNEL_LAYER_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX") or "asgi"
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: group membership is a live subscription of the process,
            # so a killed process leaves no stale members; a message is one
            # PUBLISH per process, fanned out locally. docs/architecture.md.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNEL_LAYER_PREFIX},
        }
    }
else:
    # One process only: fine for `make run`, wrong for several daphne replicas.
    # A process's room events all pass through one channel (the relay's,
    # chat/services/broadcast.py): room for bursts, as the Redis layer has.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 10_000},
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "index"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# HTTPS=1 when users reach the site over TLS (terminated by the proxy, which
# sets X-Forwarded-Proto): cookies are then Secure, and browsers told to keep
# to HTTPS. The proxy, not Django, redirects plain HTTP.
HTTPS = env_bool("HTTPS")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 3600)
SILENCED_SYSTEM_CHECKS = [
    # SECURE_SSL_REDIRECT: the TLS-terminating proxy redirects plain HTTP.
    "security.W008",
    # HSTS includeSubDomains and preload commit other hosts of the domain:
    # the operator's decision, not this app's.
    "security.W005",
    "security.W021",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Uploaded attachments: in MEDIA_ROOT through the default storage, which
# CHAT_STORAGE_BACKEND may replace with any Django storage (S3, say, with
# django-storages and its settings). They are served by a view that checks
# who asks, never as static files.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or VAR_DIR / "media")
STORAGES = {
    "default": {
        "BACKEND": os.environ.get(
            "CHAT_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
        )
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The largest attachment; a bigger upload is refused before it is stored.
CHAT_MAX_UPLOAD_BYTES = env_int("CHAT_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, minimum=1)
FILE_UPLOAD_HANDLERS = [
    "chat.uploads.CappedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

STATIC_URL = "static/"
# daphne serves /static/ itself when this is on; otherwise a proxy serves STATIC_ROOT.
SERVE_STATIC = env_bool("SERVE_STATIC", DEBUG)
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # A periodic task's routine success (notify_due's, every 30 s) is DEBUG, not INFO.
    "filters": {"periodic": {"()": "chat.taskqueue.PeriodicSuccessFilter"}},
    "loggers": {
        # httpx logs each request's URL at INFO: link previews' URLs are message text.
        "httpx": {"level": "WARNING"},
        "celery.app.trace": {"filters": ["periodic"]},
    },
}

# Chat behaviour.
CHAT_ALLOW_GUESTS = env_bool("CHAT_ALLOW_GUESTS")
# Public rooms anyone may open, guests included; created on first join.
CHAT_DEFAULT_ROOMS = env_list("CHAT_DEFAULT_ROOMS", "lobby")
CHAT_HISTORY_PAGE = env_int("CHAT_HISTORY_PAGE", 50, minimum=1)
# Every CHAT_SWEEP_SECONDS each process sends its sockets any stored message
# that live delivery lost, and refreshes their presence, which expires after
# CHAT_PRESENCE_TTL seconds without a refresh (a killed process's sockets).
CHAT_SWEEP_SECONDS = env_float("CHAT_SWEEP_SECONDS", 10, minimum=0.05)
CHAT_PRESENCE_TTL = env_int("CHAT_PRESENCE_TTL", 30, minimum=1)
# Sends (and edits and deletes) per user, and per client address (higher:
# people behind one NAT share an address), across all processes.
CHAT_SEND_BURST = env_int("CHAT_SEND_BURST", 10, minimum=1)
CHAT_SEND_PER_MINUTE = env_int("CHAT_SEND_PER_MINUTE", 120, minimum=1)
CHAT_IP_SEND_BURST = env_int("CHAT_IP_SEND_BURST", 30, minimum=1)
CHAT_IP_SEND_PER_MINUTE = env_int("CHAT_IP_SEND_PER_MINUTE", 600, minimum=1)
CHAT_MAX_SOCKETS_PER_USER = env_int("CHAT_MAX_SOCKETS_PER_USER", 20, minimum=1)
# Guests' open sockets per client address, across processes (people behind
# one NAT share an address, so it is higher than a user's).
CHAT_MAX_GUEST_SOCKETS_PER_ADDRESS = env_int("CHAT_MAX_GUEST_SOCKETS_PER_ADDRESS", 100, minimum=1)
# An HTTP connection (a WebSocket's handshake too) must send its request's
# headers within this many seconds of connecting, or it is closed (slowloris).
CHAT_HTTP_HEADER_TIMEOUT = env_float("CHAT_HTTP_HEADER_TIMEOUT", 10, minimum=0.1)
# Then its body must keep coming: nothing for this many seconds, or (after as
# many) under CHAT_HTTP_BODY_MIN_RATE bytes a second on average, and it is closed.
CHAT_HTTP_BODY_TIMEOUT = env_float("CHAT_HTTP_BODY_TIMEOUT", 10, minimum=0.1)
CHAT_HTTP_BODY_MIN_RATE = env_int("CHAT_HTTP_BODY_MIN_RATE", 10_000, minimum=1)
CHAT_MAX_ROOMS_PER_SOCKET = env_int("CHAT_MAX_ROOMS_PER_SOCKET", 100, minimum=1)
# A socket whose unsent backlog passes this many bytes (the client stopped
# reading) is closed with 4008, so slow clients cannot grow memory.
# A send is refused (`overloaded`, with retry_after) rather than queued when
# this process's writer, or its event loop, is this many seconds behind.
CHAT_MAX_SEND_LAG = env_float("CHAT_MAX_SEND_LAG", 0.5, minimum=0.01)
CHAT_MAX_OUTBOUND_BYTES = env_int("CHAT_MAX_OUTBOUND_BYTES", 1024 * 1024, minimum=1)
# Message text older than this many days is erased by the worker (the entries
# stay, as deleted, so seqs stay gapless); 0 keeps everything.
CHAT_RETENTION_DAYS = env_int("CHAT_RETENTION_DAYS", 0)
# On SIGTERM, how long a process waits for its sockets to close (code 1012)
# before it exits; keep it under daphne's --application-close-timeout (10 s).
CHAT_DRAIN_SECONDS = env_float("CHAT_DRAIN_SECONDS", 5)
# Link previews: the first http(s) URL of a message is fetched by the worker
# (in-process without Redis) and its title and description shown. Fetches
# refuse private, loopback and link-local addresses, except host:port pairs
# listed in CHAT_PREVIEW_ALLOW (for tests and intranets).
CHAT_PREVIEWS = env_bool("CHAT_PREVIEWS", True)
CHAT_PREVIEW_ALLOW = env_list("CHAT_PREVIEW_ALLOW", "")
CHAT_PREVIEW_TIMEOUT = env_float("CHAT_PREVIEW_TIMEOUT", 5, minimum=0.1)
CHAT_PREVIEW_MAX_BYTES = env_int("CHAT_PREVIEW_MAX_BYTES", 512 * 1024, minimum=1)
# /metrics answers private and loopback addresses, and this bearer token.
CHAT_METRICS_TOKEN = os.environ.get("CHAT_METRICS_TOKEN", "")
# Where users reach the site, for the links in emails.
CHAT_SITE_URL = (os.environ.get("CHAT_SITE_URL") or "http://127.0.0.1:8000").rstrip("/")
# A user is emailed about unread mentions and DMs once they are this many
# seconds old and no socket of theirs was open since; at most once per this long.
CHAT_NOTIFY_EMAIL_DELAY = env_int("CHAT_NOTIFY_EMAIL_DELAY", 300, minimum=1)
# Emails a user may ask for (verification links, password resets): a burst,
# then so many an hour, per user, per recipient, and three times as many
# per client address.
CHAT_MAIL_BURST = env_int("CHAT_MAIL_BURST", 3, minimum=1)
CHAT_MAIL_PER_HOUR = env_int("CHAT_MAIL_PER_HOUR", 6, minimum=1)
# A room export can be downloaded for this many days, then it is removed.
CHAT_EXPORT_DAYS = env_int("CHAT_EXPORT_DAYS", 7, minimum=1)
# Exports a user may ask for (a burst, then so many an hour), and the bytes
# of zips they may keep at once (until some expire, or they delete some).
CHAT_EXPORTS_BURST = env_int("CHAT_EXPORTS_BURST", 3, minimum=1)
CHAT_EXPORTS_PER_HOUR = env_int("CHAT_EXPORTS_PER_HOUR", 10, minimum=1)
CHAT_EXPORT_MAX_BYTES = env_int("CHAT_EXPORT_MAX_BYTES", 1024**3, minimum=1)
# Rooms a user may make (a burst, then so many an hour): a taken name is
# refused in the same words whoever holds it, and this bounds how fast names
# can be tried.
CHAT_ROOMS_BURST = env_int("CHAT_ROOMS_BURST", 5, minimum=1)
CHAT_ROOMS_PER_HOUR = env_int("CHAT_ROOMS_PER_HOUR", 30, minimum=1)

# Background work (chat/tasks.py) on Celery (chatsite/celery.py), through this
# broker. Without one (`make run`), each task runs in the process that
# enqueues it, in a thread of its own, and that process runs the schedule.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL
CELERY_TASK_IGNORE_RESULT = True  # no result backend: no task's caller waits for it
# A task is acknowledged when it is done, not when it starts, so one whose
# worker dies is run again: at once if a pool process died
# (reject_on_worker_lost), or after CELERY_VISIBILITY_TIMEOUT seconds if the
# whole worker did. Every task is idempotent, so running twice does no harm.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 900, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Look for the tasks of a dead worker every few seconds, not every 100.
    "unacked_restore_interval": min(10, CELERY_VISIBILITY_TIMEOUT),
    "unacked_restore_throttle": 1,
    # A publish must not wait forever on a Redis that vanished.
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SEND_SENT_EVENT = False
# The periodic work, run by `celery -A chatsite beat` (or in-process, above).
CELERY_BEAT_SCHEDULE = {
    "notify-due": {"task": "chat.tasks.notify_due", "schedule": 30.0},
    "attachments-prune": {"task": "chat.tasks.attachments_prune", "schedule": 3600.0},
    "retention-prune": {"task": "chat.tasks.retention_prune", "schedule": 3600.0},
    "exports-expire": {"task": "chat.tasks.exports_expire", "schedule": 3600.0},
}

# Email, with Django's own settings' names. Without EMAIL_HOST, mail is
# written to the console (`make run`).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL") or "chat@localhost"
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    _problems.append("EMAIL_USE_TLS and EMAIL_USE_SSL: set one, not both")

if _problems:
    raise ImproperlyConfigured("bad settings in the environment: " + "; ".join(_problems))
