"""Accounts, and closing the sockets of sessions and users that end."""

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.http import HttpRequest

from chat.services.broadcast import credentials_revoked_broadcast, on_commit_broadcast


async def user_signup(*, username: str, password: str) -> User:
    """Create an active user with this password (validated by the caller's form)."""
    return await _user_create(username=username, password=password)


@database_sync_to_async
def _user_create(*, username: str, password: str) -> User:
    return get_user_model().objects.create_user(username=username, password=password)


def session_ended(sender, request: HttpRequest, user: User | None, **kwargs) -> None:
    """Signal receiver: close the sockets that this session authenticated."""
    if user is not None and request.session.session_key:
        on_commit_broadcast(
            credentials_revoked_broadcast,
            user_id=user.pk,
            session_key=request.session.session_key,
            reason="signed out: this session has ended",
        )


def user_saved(sender, instance: User, **kwargs) -> None:
    """Signal receiver: a deactivated user's sockets close, once that is committed."""
    if not instance.is_active:
        on_commit_broadcast(
            credentials_revoked_broadcast,
            user_id=instance.pk,
            reason="this account was deactivated",
        )
