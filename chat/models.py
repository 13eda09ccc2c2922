"""Fields, constraints and indexes. No behaviour: services write, selectors read."""

from enum import StrEnum

from django.conf import settings
from django.db import models

from chat.protocol import AuditAction, EntryKind, ExportState, ModerationAction, Role, RoomKind


def _choices(*enums: type[StrEnum]) -> list[tuple[str, str]]:
    """Model choices from the protocol's enums: one definition of each value."""
    return [(m.value, m.name.replace("_", " ").title()) for enum in enums for m in enum]


class Room(models.Model):
    Kind = RoomKind

    slug = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=200)
    private = models.BooleanField(default=False)
    # False: guests may read the room but not write to it (nor show as typing).
    guests_can_write = models.BooleanField(default=True)
    kind = models.CharField(max_length=8, choices=_choices(RoomKind), default=RoomKind.ROOM)
    # For a DM, a hash of its members' ids: the same people find the same DM.
    dm_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The seq of the newest message. Bumped under a row lock in the same
    # transaction as the insert, so seqs are gapless and in commit order.
    last_seq = models.PositiveBigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    Role = Role

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=_choices(Role), default=Role.MEMBER)
    last_read_seq = models.PositiveBigIntegerField(default=0)
    # The missed-message email has looked at every entry up to this seq.
    notified_seq = models.PositiveBigIntegerField(default=0)
    joined = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="membership_room_user_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id} ({self.role})"


class Attachment(models.Model):
    """An uploaded file, in the default storage, for one message of a room.
    It is served only to those who may read the room."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    file = models.FileField(upload_to="attachments/%Y/%m/", max_length=300)
    # The name as uploaded (cleaned), and the type its first bytes show.
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    # An image's size in pixels, and its thumbnail (WebP, at most 480 x 360).
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    thumbnail = models.FileField(upload_to="attachments/%Y/%m/", max_length=300, blank=True)
    # True once a message holds it: a file is attached to one message only.
    attached = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Message(models.Model):
    """One entry of a room's stream. Most are messages; an edit, a delete or a
    reaction to a message is an entry of its own (with `target` = the message's
    seq), so a client that rejoins with `since` learns of it like of any new message."""

    Kind = EntryKind

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=8, choices=_choices(EntryKind), default=EntryKind.MESSAGE)
    target = models.PositiveBigIntegerField(null=True, blank=True)
    # A message is written by a user, or by a guest (author is null) whose name
    # is kept in author_name. Users' names are copied too, so history shows the
    # name as it was when the message was sent.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    # For a message, its current text (edits change it, deletes empty it);
    # for a reaction entry, the emoji.
    body = models.TextField()
    # The seq of the message this one replies to, in the same room.
    reply_to = models.PositiveBigIntegerField(null=True, blank=True)
    attachment = models.ForeignKey(
        Attachment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_id = models.UUIDField()
    created = models.DateTimeField(auto_now_add=True)
    edited = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    # True once anyone reacted to the message: pages look up the reactions of
    # these messages only.
    reacted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_room_seq_unique"),
            models.UniqueConstraint(
                fields=["room", "client_id"], name="message_room_client_id_unique"
            ),
        ]
        indexes = [
            # The entries about a message: a delete erases its edits' text.
            models.Index(
                fields=["room", "target"],
                condition=models.Q(target__isnull=False),
                name="message_room_target",
            )
        ]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq}"


class Reaction(models.Model):
    """A user's emoji on message `seq` of a room: the current state, which the
    stream's react and unreact entries change."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    seq = models.PositiveBigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "seq", "user", "emoji"], name="reaction_unique")
        ]

    def __str__(self) -> str:
        return f"{self.emoji} on {self.room_id}#{self.seq}"


class LinkPreview(models.Model):
    """What a URL's page says about itself, fetched once: the cache of link
    previews. `ok` is false when the fetch failed or was refused."""

    url_hash = models.CharField(max_length=64, unique=True)  # SHA-256 of the URL
    url = models.TextField()
    ok = models.BooleanField(default=False)
    title = models.CharField(max_length=300, blank=True)
    description = models.CharField(max_length=500, blank=True)
    image = models.TextField(blank=True)
    fetched = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url


class Mention(models.Model):
    """User `user` was @-named in message `seq` of a room, as it was sent."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="+")
    seq = models.PositiveBigIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "seq", "user"], name="mention_unique")
        ]
        indexes = [models.Index(fields=["user", "room", "seq"], name="mention_user_room_seq")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.room_id}#{self.seq}"


class Block(models.Model):
    """User `user` blocked `blocked`: `blocked` may not write to a DM that
    `user` is in, and their @-mentions do not reach `user`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blocks"
    )
    blocked = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "blocked"], name="block_unique"),
            models.CheckConstraint(
                condition=~models.Q(user=models.F("blocked")), name="block_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} blocks {self.blocked_id}"


class Sanction(models.Model):
    """A user banned from a room (may not join, read or write it) or muted in it
    (may read but not write), until `until` (null: until lifted)."""

    class Kind(models.TextChoices):
        BAN = "ban"
        MUTE = "mute"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="sanctions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    until = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user", "kind"], name="sanction_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.user_id} in {self.room_id}"


class ModerationLog(models.Model):
    """The audit log: each moderation action, who took it, on whom, and why.
    Names are copied so that an entry outlives the room and the users."""

    room = models.ForeignKey(Room, null=True, on_delete=models.SET_NULL, related_name="+")
    room_slug = models.CharField(max_length=50)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    # A moderation action, or an audited one: a delete of another's message,
    # an export by permission.
    action = models.CharField(max_length=8, choices=_choices(ModerationAction, AuditAction))
    target = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_name = models.CharField(max_length=150)
    # The deleted message's seq, for a delete.
    seq = models.PositiveBigIntegerField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target_name} in {self.room_slug}"


class ApiToken(models.Model):
    """A bearer token for non-browser clients. Only a SHA-256 of the secret is kept."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the token, to tell tokens apart without the secret.
    prefix = models.CharField(max_length=16)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"


class Profile(models.Model):
    """A user's email settings, and when they last had a socket open."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="profile"
    )
    # The address the user proved they read (blank: none); mail about chat
    # goes only to `user.email`, and only while it is this one.
    verified_email = models.EmailField(blank=True)
    notify_email = models.BooleanField(default=True)
    # Bumped while a socket of the user is open (by each sweep) and when it closes.
    last_seen = models.DateTimeField(null=True, blank=True)
    notified = models.DateTimeField(null=True, blank=True)  # the last missed-message email

    def __str__(self) -> str:
        return f"profile of {self.user_id}"


class Export(models.Model):
    """A zip of a room's stream (or, with no room, of everything the requester
    wrote), built by a task and downloadable by its requester until `expires`."""

    State = ExportState

    id = models.UUIDField(primary_key=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    room = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    state = models.CharField(
        max_length=8, choices=_choices(ExportState), default=ExportState.QUEUED
    )
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/", max_length=300, blank=True)
    # A worker building it holds it until then (renewed each batch): another
    # delivery of the task leaves it alone, unless that worker died.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The zip's size in bytes, once built: counted against the requester's allowance.
    size = models.PositiveBigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires"], name="export_expires")]
        permissions = [
            ("export_any_room", "Can export any room, DMs included (each one audited)"),
        ]

    def __str__(self) -> str:
        return f"export {self.id}"
