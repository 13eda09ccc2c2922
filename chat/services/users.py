"""Accounts (signup, email addresses and their verification, when users
were last seen), and closing the sockets of sessions and users that end:
a log-out, a deactivation, a password changed or reset."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from chat.models import ApiToken, Profile
from chat.services.broadcast import (
    credentials_revoked_broadcast,
    on_commit_broadcast,
    password_changed_broadcast,
)
from chat.services.limits import mail_rate_take
from chat.services.mail import mail_build, site_url, verify_claim, verify_url
from chat.taskqueue import task_enqueue


def user_signup(
    *, username: str, password: str, email: str = "", address: str | None = None
) -> User:
    """Create an active user with this password (validated by the caller's
    form); an address given is sent its verification link, within the mail
    rates (else `rate_limited`, and no user is made)."""
    if email:
        async_to_sync(mail_rate_take)(user_id=None, address=address, to=email)
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=username, password=password, email=email
        )
        Profile.objects.create(user=user)
        if email:
            task_enqueue("chat.tasks.email_verify_send", user_id=user.pk, email=email)
    return user


def user_email_settings(
    *, user: User, email: str, notify_email: bool, address: str | None = None
) -> bool:
    """Change the user's address and whether they get missed-message emails;
    a new address must be verified again (its link is sent, within the mail
    rates: else `rate_limited`, and nothing changes). Returns whether the
    address changed."""
    changed = email != user.email
    if changed and email:
        async_to_sync(mail_rate_take)(user_id=user.pk, address=address, to=email)
    with transaction.atomic():
        Profile.objects.update_or_create(user=user, defaults={"notify_email": notify_email})
        if changed:
            user.email = email
            user.save(update_fields=["email"])
            if email:
                task_enqueue("chat.tasks.email_verify_send", user_id=user.pk, email=email)
    return changed


def email_verify_send(*, user_id: int, email: str) -> bool:
    """Send the verification link for `email`, if it is still the user's
    unverified address; returns whether it was sent."""
    user = get_user_model().objects.filter(pk=user_id, email=email, is_active=True).first()
    if user is None or Profile.objects.filter(user=user, verified_email=email).exists():
        return False
    mail_build(
        to=email,
        subject="Confirm your email address for Chat",
        template="verify",
        context={"user": user, "link": verify_url(user_id=user_id, email=email)},
    ).send()
    return True


def email_verify(*, token: str) -> bool:
    """Mark the address of a verification link verified, if the link is good
    and the address is still the user's."""
    claim = verify_claim(token=token)
    if claim is None:
        return False
    user_id, email = claim
    if not get_user_model().objects.filter(pk=user_id, email=email).exists():
        return False
    Profile.objects.update_or_create(user_id=user_id, defaults={"verified_email": email})
    return True


def password_reset_allowed(*, email: str, address: str | None) -> None:
    """Take a password reset email to `email` from the mail rates, whether or
    not an account has it (the answer must not tell); or `rate_limited`."""
    async_to_sync(mail_rate_take)(user_id=None, address=address, to=email)


def password_reset_send(*, user_id: int) -> bool:
    """Email an active user with a password a link to choose a new one
    (Django's token: it stops working once the password changes)."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email or not user.has_usable_password():
        return False
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(user)])
    mail_build(
        to=user.email,
        subject="Reset your password for Chat",
        template="password_reset",
        context={"user": user, "link": site_url(path)},
    ).send()
    return True


async def users_seen(*, user_ids: set[int]) -> None:
    """Record that these users have a socket open now (or had, until now)."""
    if user_ids:
        await _users_seen(user_ids=user_ids, at=timezone.now())


@database_sync_to_async
def _users_seen(*, user_ids: set[int], at: datetime) -> None:
    Profile.objects.bulk_create(
        [Profile(user_id=user_id, last_seen=at) for user_id in sorted(user_ids)],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["last_seen"],
    )


def session_ended(sender, request: HttpRequest, user: User | None, **kwargs) -> None:
    """Signal receiver: close the sockets that this session authenticated."""
    if user is not None and request.session.session_key:
        on_commit_broadcast(
            credentials_revoked_broadcast,
            user_id=user.pk,
            session_key=request.session.session_key,
            reason="signed out: this session has ended",
        )


# The session a password change in progress keeps signed in: its key as
# the change began ("from") and, once Django has cycled it, its new one ("to").
_kept: ContextVar[dict[str, str | None] | None] = ContextVar("chat_session_kept", default=None)


@contextmanager
def password_change_keeping(session: SessionBase) -> Iterator[None]:
    """Within: a password change (Django's view) keeps this session signed in,
    as Django does, and its sockets open; every other session of the user
    ends, sockets too, once it commits (`user_saved`)."""
    kept: dict[str, str | None] = {"from": session.session_key, "to": None}
    reset = _kept.set(kept)
    try:
        with transaction.atomic():
            yield
            session.save()  # its new auth hash, before the sweep can read it
            kept["to"] = session.session_key
    finally:
        _kept.reset(reset)


def user_password_reset(*, user: User) -> None:
    """A password reset by email: the user's API tokens go too (whoever took
    the account may have made some), and every socket of theirs closes."""
    ApiToken.objects.filter(user=user).delete()
    on_commit_broadcast(
        credentials_revoked_broadcast,
        user_id=user.pk,
        reason="the password was reset: sign in again",
    )


def user_saved(sender, instance: User, created: bool = False, **kwargs) -> None:
    """Signal receiver, once the save commits: a deactivated user's sockets
    close; a changed password closes every socket a session opened, but
    those of the session that changed it (`password_change_keeping`)."""
    if not instance.is_active:
        on_commit_broadcast(
            credentials_revoked_broadcast,
            user_id=instance.pk,
            reason="this account was deactivated",
        )
    # set_password() holds the new password until save() has sent this signal.
    elif not created and getattr(instance, "_password", None) is not None:
        kept = _kept.get() or {}
        transaction.on_commit(
            lambda: async_to_sync(password_changed_broadcast)(
                user_id=instance.pk, kept_from=kept.get("from"), kept_to=kept.get("to")
            )
        )
