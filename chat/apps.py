from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_save

        from chat.services.users import session_ended, user_saved

        # Log-out and deactivation happen in Django's own views and the admin.
        user_logged_out.connect(session_ended, dispatch_uid="chat-logout")
        post_save.connect(user_saved, sender=get_user_model(), dispatch_uid="chat-user-saved")
