from django.contrib import admin
from django.http import HttpRequest, HttpResponseBase
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from chat import views
from chat.api import api


@csrf_exempt  # the view checks CSRF itself, for cookie-authenticated requests only
async def graphql(request: HttpRequest) -> HttpResponseBase:
    # GraphQL's schema takes most of a second to import and build: made on
    # first use, not at every server start.
    from chat.graphql.view import graphql as view

    return await view(request)


urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/v1/", api.urls),
    path("graphql/", graphql, name="graphql"),
    path("attachments/<int:attachment_id>/<str:name>", views.attachment, name="attachment"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/password_reset/", views.PasswordReset.as_view(), name="password_reset"),
    path("accounts/password_change/", views.PasswordChange.as_view(), name="password_change"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        views.PasswordResetConfirm.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/verify/<str:token>", views.email_verify_page, name="email_verify"),
    path("email/unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("settings/", views.settings_page, name="settings_page"),
    path("settings/export", views.export_mine_form, name="export_mine_form"),
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
