from django.contrib import admin

from chat.models import ApiToken, Membership, Message, Room


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
    list_display = ["room", "seq", "author_name", "created", "deleted"]
    list_filter = ["deleted"]
    # seq and client_id are the delivery guarantees: never edited by hand.
    readonly_fields = ["room", "seq", "client_id", "author", "author_name", "created"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created"]
    readonly_fields = ["key_hash", "prefix", "created"]
