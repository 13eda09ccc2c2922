from django.contrib import admin
from django.urls import include, path

from chat import views

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/signup/", views.signup, name="signup"),
    path("rooms/new", views.room_new, name="room_new"),
    path("rooms/<slug:slug>/invite", views.room_invite, name="room_invite"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
