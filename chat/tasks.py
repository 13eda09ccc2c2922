"""The background tasks, run by `celery -A chatsite worker` (chatsite/celery.py).

Each is idempotent, and takes only ids: what to do is read from the database
when it runs, so a task run twice, or late, does the right thing once. A
transient failure (SMTP away, a page timing out) is retried with backoff,
at most MAX_RETRIES times, and then logged as failed. Code enqueues them by
name (`task_enqueue`), so services need not import this module.
"""

import logging
import smtplib
from datetime import timedelta
from typing import Any

import httpx
from asgiref.sync import async_to_sync
from celery import Task, shared_task, signals
from django.conf import settings

from chat import metrics
from chat.services import exports, notify, previews, users
from chat.services.attachments import attachments_prune as _attachments_prune
from chat.services.messages import messages_expire
from chat.taskqueue import task_enqueue

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
# Retried with exponential backoff (1, 2, 4… s, jittered, at most 10 minutes).
RETRIED = {"retry_backoff": True, "retry_backoff_max": 600, "max_retries": MAX_RETRIES}
MAIL_ERRORS = (smtplib.SMTPException, OSError)


@shared_task(
    name="chat.tasks.preview_attach",
    autoretry_for=(TimeoutError, httpx.TransportError),
    **RETRIED,
)
def preview_attach(*, room_id: int, seq: int) -> None:
    """Give message `seq` of a room its link preview (with the SSRF guard)."""
    async_to_sync(previews.preview_attach)(room_id=room_id, seq=seq)


@shared_task(name="chat.tasks.retention_prune")
def retention_prune() -> None:
    """Erase the text of entries older than CHAT_RETENTION_DAYS (if set)."""
    if days := settings.CHAT_RETENTION_DAYS:
        erased = async_to_sync(messages_expire)(older_than=timedelta(days=days))
        logger.info("retention: erased the text of %d entries older than %d days", erased, days)


@shared_task(name="chat.tasks.attachments_prune")
def attachments_prune() -> None:
    """Remove uploads that no message took within a day."""
    if removed := async_to_sync(_attachments_prune)():
        logger.info("removed %d uploads that no message took", removed)


@shared_task(name="chat.tasks.notify_due")
def notify_due() -> None:
    """Enqueue a `notify_send` for each user who may be owed a missed-message email."""
    for user_id in notify.notify_due():
        task_enqueue("chat.tasks.notify_send", user_id=user_id)


@shared_task(name="chat.tasks.notify_send", autoretry_for=MAIL_ERRORS, **RETRIED)
def notify_send(*, user_id: int) -> None:
    """Send the user's missed-message email, if one is still owed."""
    notify.notify_send(user_id=user_id)


@shared_task(name="chat.tasks.email_verify_send", autoretry_for=MAIL_ERRORS, **RETRIED)
def email_verify_send(*, user_id: int, email: str) -> None:
    """Send the link that verifies `email`, if it is still the user's unverified address."""
    users.email_verify_send(user_id=user_id, email=email)


@shared_task(name="chat.tasks.password_reset_send", autoretry_for=MAIL_ERRORS, **RETRIED)
def password_reset_send(*, user_id: int) -> None:
    """Send a password reset link, made when the task runs: no secret waits in the broker."""
    users.password_reset_send(user_id=user_id)


@shared_task(name="chat.tasks.export_build", bind=True, max_retries=40)
def export_build(self: Task, *, export_id: str) -> None:
    """Build an export's zip, unless it is built; while another worker holds
    it, try again when its lease ends (it may have died)."""
    wait = exports.export_build(export_id=export_id)
    if wait is not None and not self.request.is_eager:  # eager: the holder is this process
        raise self.retry(countdown=wait.total_seconds() + 1)


@shared_task(name="chat.tasks.exports_expire")
def exports_expire() -> None:
    """Remove exports past their CHAT_EXPORT_DAYS, with their files."""
    if removed := exports.exports_expire():
        logger.info("removed %d expired exports", removed)


# Counts of every task's outcomes, for /metrics (chat/metrics.py).
@signals.task_success.connect
def _succeeded(sender: Any = None, **kwargs: Any) -> None:
    metrics.task_count(task=sender.name, outcome="succeeded")


@signals.task_failure.connect
def _failed(sender: Any = None, **kwargs: Any) -> None:
    metrics.task_count(task=sender.name, outcome="failed")


@signals.task_retry.connect
def _retried(sender: Any = None, **kwargs: Any) -> None:
    metrics.task_count(task=sender.name, outcome="retried")
