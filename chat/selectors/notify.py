"""What the missed-message email would tell a user: unread mentions and DMs
they were away for, in rooms they may still read."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Greatest

from chat.models import Membership, Mention, Message, Profile, Sanction
from chat.protocol import EntryKind, RoomKind
from chat.selectors.rooms import sanctions_active


@dataclass(frozen=True, slots=True)
class Missed:
    """The messages of one room to tell a user about, oldest first; `upto`:
    the seq the email accounts for (every entry up to it was looked at)."""

    membership_id: int
    slug: str
    title: str
    dm: bool
    messages: list[Message]
    upto: int


def _memberships(*, user_id: int | None, cutoff: datetime) -> QuerySet[Membership]:
    """Memberships with an unread mention or DM message from someone else,
    sent before `cutoff` and not yet looked at, whose user may get the email."""
    floor = Greatest("last_read_seq", "notified_seq")
    unread = Message.objects.filter(
        room=OuterRef("room"),
        seq__gt=OuterRef("floor"),
        kind=EntryKind.MESSAGE,
        deleted=False,
        created__lte=cutoff,
    ).exclude(author=OuterRef("user"))
    mentioned = Mention.objects.filter(
        user=OuterRef("user"), room=OuterRef("room"), seq__gt=OuterRef("floor")
    )
    banned = Sanction.objects.filter(
        sanctions_active(), user=OuterRef("user"), room=OuterRef("room"), kind=Sanction.Kind.BAN
    )
    memberships = Membership.objects.annotate(floor=floor).filter(
        Q(room__kind=RoomKind.DM) | Exists(mentioned),
        Exists(unread),
        ~Exists(banned),
        room__last_seq__gt=F("floor"),
        user__is_active=True,
        user__profile__notify_email=True,
        user__profile__verified_email=F("user__email"),
    )
    memberships = memberships.exclude(user__email="")
    return memberships if user_id is None else memberships.filter(user_id=user_id)


def notify_due_users(*, cutoff: datetime) -> list[int]:
    """Users who may be owed a missed-message email now: something is pending
    from before `cutoff`, and their last such email was before it too."""
    rows = _memberships(user_id=None, cutoff=cutoff).filter(
        Q(user__profile__notified__isnull=True) | Q(user__profile__notified__lte=cutoff)
    )
    return sorted(set(rows.values_list("user_id", flat=True)))


def notify_missed(*, profile: Profile, cutoff: datetime) -> list[Missed]:
    """What to tell the profile's user, room by room: unread DMs, and unread
    messages that mention them, sent before `cutoff` and after the user's
    last socket closed. Empty when nothing is owed."""
    if profile.notified is not None and profile.notified > cutoff:
        return []
    missed = []
    memberships = _memberships(user_id=profile.user_id, cutoff=cutoff).select_related("room")
    for membership in memberships.order_by("room__slug"):
        room = membership.room
        dm = room.kind == RoomKind.DM
        entries = Message.objects.filter(
            room=room,
            seq__gt=membership.floor,  # type: ignore[attr-defined]
            created__lte=cutoff,
            kind=EntryKind.MESSAGE,
            deleted=False,
        ).exclude(author_id=profile.user_id)
        if profile.last_seen is not None:
            entries = entries.filter(created__gt=profile.last_seen)
        if not dm:
            seqs = Mention.objects.filter(
                user_id=profile.user_id,
                room=room,
                seq__gt=membership.floor,  # type: ignore[attr-defined]
            )
            entries = entries.filter(seq__in=seqs.values("seq"))
        # Everything up to the newest entry before the cutoff has been looked
        # at, sent or not (read since, or seen while a socket was open).
        upto = (
            Message.objects.filter(room=room, created__lte=cutoff)
            .order_by("-seq")
            .values_list("seq", flat=True)
            .first()
        )
        messages = list(entries.order_by("seq")[:50])
        if upto is not None:
            missed.append(
                Missed(
                    membership_id=membership.pk,
                    slug=room.slug,
                    title=room.title,
                    dm=dm,
                    messages=messages,
                    upto=upto,
                )
            )
    return missed
