"""Missed-message emails, in the Zulip style.

A user gets one email when they have unread mentions or DMs older than
CHAT_NOTIFY_EMAIL_DELAY, had no socket open since those were sent, and were
not emailed about them yet: at most one email per CHAT_NOTIFY_EMAIL_DELAY.

What is owed is worked out from the database, never carried by the task:
`notify_send` locks the user's profile, reads what is pending, sends, and
records the send (each membership's `notified_seq`, the profile's
`notified`) in that one transaction. So a lost task loses nothing (the next
`notify_due` finds the user again), a repeated or concurrent one finds
nothing left to send, and a failed send records nothing and is retried.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chat.models import Membership, Profile
from chat.selectors.notify import Missed, notify_due_users, notify_missed
from chat.services.mail import mail_build, site_url, unsubscribe_url

logger = logging.getLogger(__name__)


def notify_due() -> list[int]:
    """The users to whom `notify_send` may owe an email now."""
    cutoff = timezone.now() - timedelta(seconds=settings.CHAT_NOTIFY_EMAIL_DELAY)
    return notify_due_users(cutoff=cutoff)


def notify_send(*, user_id: int) -> int:
    """Send the user their missed-message email if one is owed; returns how
    many messages it told of (0: none sent). Raises the mail backend's error,
    having recorded nothing, for the caller to retry."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.CHAT_NOTIFY_EMAIL_DELAY)
    with transaction.atomic():
        profile = (
            Profile.objects.select_for_update().select_related("user").filter(pk=user_id).first()
        )
        if profile is None:
            return 0
        missed = notify_missed(profile=profile, cutoff=cutoff)
        told = sum(len(room.messages) for room in missed)
        if told:
            _mail(profile=profile, missed=missed, told=told).send()
            profile.notified = now
            profile.save(update_fields=["notified"])
        for room in missed:
            Membership.objects.filter(pk=room.membership_id).update(notified_seq=room.upto)
    if told:
        logger.info("missed-message email to user %s: %d messages", user_id, told)
    return told


def _mail(*, profile: Profile, missed: list[Missed], told: int):
    rooms = [
        {
            "name": "Direct messages" if room.dm else (room.title or room.slug),
            "messages": [
                {
                    "author": message.author_name,
                    "body": message.body,
                    "created": message.created,
                    "link": site_url(f"/#{room.slug}/{message.seq}"),
                }
                for message in room.messages
            ],
        }
        for room in missed
        if room.messages
    ]
    noun = "message" if told == 1 else "messages"
    return mail_build(
        to=profile.user.email,
        subject=f"{told} unread {noun} in Chat",
        template="missed",
        context={"user": profile.user, "rooms": rooms, "settings_url": site_url("/settings/")},
        unsubscribe=unsubscribe_url(user_id=profile.user_id),
    )


def notify_unsubscribe(*, user_id: int) -> None:
    """Turn off the user's missed-message emails (the one-click link)."""
    Profile.objects.filter(pk=user_id).update(notify_email=False)
