from django.contrib import admin
from django.urls import include, path

from chat import views
from chat.api import api

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/v1/", api.urls),
    path("attachments/<int:attachment_id>/<str:name>", views.attachment, name="attachment"),
    path("accounts/signup/", views.signup, name="signup"),
    path("rooms/new", views.room_create_form, name="room_create_form"),
    path("rooms/<slug:slug>/invite", views.room_invite_form, name="room_invite_form"),
    path("settings/tokens", views.tokens_page, name="tokens_page"),
    path(
        "settings/tokens/<int:token_id>/revoke",
        views.token_revoke_form,
        name="token_revoke_form",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
