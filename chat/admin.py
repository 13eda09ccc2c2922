from django.contrib import admin

from chat.models import ApiToken, Attachment, Membership, Message, ModerationLog, Room, Sanction
from chat.services.attachments import attachments_delete
from chat.services.messages import message_delete_by_staff


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "private", "last_seq", "created"]
    search_fields = ["slug", "title"]
    readonly_fields = ["last_seq"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["room", "user", "role", "last_read_seq"]
    list_filter = ["role"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """The streams, read only: a row edited or removed here would never reach
    the rooms' sockets, and a removed one would leave a hole in the seqs.
    Deleting a message goes through the service, as a moderator's delete
    does: a delete entry with the next seq, broadcast, in the audit log."""

    list_display = ["room", "seq", "kind", "author_name", "created", "deleted"]
    list_filter = ["deleted", "kind"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        deletable = obj is None or (obj.kind == Message.Kind.MESSAGE and not obj.deleted)
        return deletable and super().has_delete_permission(request, obj)

    def delete_model(self, request, obj: Message) -> None:
        message_delete_by_staff(message=obj, staff=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for message in queryset.filter(kind=Message.Kind.MESSAGE, deleted=False):
            message_delete_by_staff(message=message, staff=request.user)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created"]
    readonly_fields = ["key_hash", "prefix", "created"]


@admin.register(Sanction)
class SanctionAdmin(admin.ModelAdmin):
    """Bans and mutes. Made here, they act at once, as in the app (a banned
    user's sockets leave the room), but only the app's are in the audit log."""

    list_display = ["room", "user", "kind", "until", "by", "reason", "created"]
    list_filter = ["kind"]
    search_fields = ["room__slug", "user__username"]
    raw_id_fields = ["room", "user", "by"]


@admin.register(ModerationLog)
class ModerationLogAdmin(admin.ModelAdmin):
    """The audit log: read only."""

    list_display = ["created", "room_slug", "actor_name", "action", "target_name", "seq", "until"]
    list_filter = ["action"]
    search_fields = ["room_slug", "actor_name", "target_name"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Uploads. Deleting one here deletes its file too; its message stays."""

    list_display = ["name", "room", "uploader", "content_type", "size", "attached", "created"]
    list_filter = ["content_type", "attached"]
    search_fields = ["name", "room__slug", "uploader__username"]
    readonly_fields = [f.name for f in Attachment._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj: Attachment) -> None:
        attachments_delete(ids=[obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        attachments_delete(ids=list(queryset.values_list("pk", flat=True)))
