from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_delete, post_migrate, post_save

        from chat.models import Membership, Room, Sanction
        from chat.services import moderation
        from chat.services.users import session_ended, user_saved

        # Log-out, deactivation and password changes happen in Django's own
        # views, the admin and management commands.
        user_logged_out.connect(session_ended, dispatch_uid="chat-logout")
        post_save.connect(user_saved, sender=get_user_model(), dispatch_uid="chat-user-saved")
        # Who may be in a room, changed by any path, reaches live sockets.
        post_save.connect(moderation.membership_saved, sender=Membership)
        post_delete.connect(moderation.membership_or_sanction_changed, sender=Membership)
        post_save.connect(moderation.membership_or_sanction_changed, sender=Sanction)
        post_delete.connect(moderation.membership_or_sanction_changed, sender=Sanction)
        post_save.connect(moderation.room_changed, sender=Room)
        post_delete.connect(moderation.room_changed, sender=Room)
        post_migrate.connect(_rooms_site_ensure, sender=self)


def _rooms_site_ensure(**kwargs) -> None:
    """After each `migrate`: the site's rooms exist, owned by no user."""
    from chat.services.rooms import rooms_site_ensure

    rooms_site_ensure()
