"""HTML pages and the health check. Views validate, then call one service or selector."""

from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chat import protocol
from chat.auth import actor_from_request
from chat.files import file_response
from chat.forms import (
    EmailSettingsForm,
    InviteForm,
    ResetForm,
    RoomForm,
    SignupForm,
    TokenForm,
)
from chat.health import health_checks
from chat.metrics import metrics_allowed
from chat.realtime.drain import draining
from chat.selectors.attachments import attachment_get_readable
from chat.selectors.dms import blocks_list
from chat.selectors.exports import exports_list
from chat.selectors.rooms import rooms_visible
from chat.selectors.tokens import tokens_list
from chat.selectors.users import profile_get
from chat.services.exports import export_request
from chat.services.mail import unsubscribe_user
from chat.services.notify import notify_unsubscribe
from chat.services.rooms import membership_invite, room_create
from chat.services.tokens import token_create, token_revoke
from chat.services.users import (
    email_verify,
    password_change_keeping,
    password_reset_allowed,
    user_email_settings,
    user_password_reset,
    user_signup,
)
from chat.uploads import name_safe


async def _signed_in(request: HttpRequest) -> User:
    """The user of a request to a login_required view."""
    return cast(User, await request.auser())


async def index(request: HttpRequest) -> HttpResponse:
    """The chat app: the room list with unread counts, and the room view."""
    user = await request.auser()
    rooms = await rooms_visible(user=user)
    existing = {room.slug for room in rooms}
    rooms += [
        protocol.RoomOut(
            slug=slug, title=slug, private=False, last_seq=0, role=None, last_read_seq=0, unread=0
        )
        for slug in settings.CHAT_DEFAULT_ROOMS
        if slug not in existing
    ]
    rooms.sort(key=lambda room: room.slug)
    me = user.get_username() if user.is_authenticated else ""
    context = {
        "user": user,
        "allow_guests": settings.CHAT_ALLOW_GUESTS,
        "rooms": [room for room in rooms if room.kind == "room"],
        # Each DM with the names of the others in it, by name.
        "dms": [
            (dm, ", ".join(n for n in dm.members if n != me)) for dm in rooms if dm.kind == "dm"
        ],
        "rooms_data": [room.model_dump() for room in rooms],
        "blocks": (await blocks_list(user_id=user.pk)).users,
        "max_body_chars": protocol.MAX_BODY_CHARS,
        "max_upload_mib": settings.CHAT_MAX_UPLOAD_BYTES // (1024 * 1024),
        "slug_pattern": protocol.SLUG_PATTERN.strip("^$"),
        "guest_pattern": protocol.GUEST_NAME_PATTERN.strip("^$"),
    }
    return render(request, "chat/index.html", context)


async def attachment(
    request: HttpRequest, attachment_id: int, name: str
) -> HttpResponse | StreamingHttpResponse:
    """An attachment's file (or, with ?thumbnail, an image's thumbnail), for
    those who may read its room. Served with its checked type, never
    sniffed, and sandboxed: a file cannot act as a page."""
    try:
        actor = await actor_from_request(request)
        found = await attachment_get_readable(attachment_id=attachment_id, actor=actor)
    except protocol.ChatError as error:
        body = protocol.ApiError(code=error.code, detail=error.detail).model_dump_json()
        status = protocol.HTTP_STATUS[error.code]
        return HttpResponse(body, status=status, content_type="application/json")
    if name != found.name:
        return HttpResponse(status=404)
    if "thumbnail" in request.GET and found.thumbnail:
        file, content_type = found.thumbnail, "image/webp"
    else:
        file, content_type = found.file, found.content_type
    return await file_response(
        name=file.name or "",
        content_type=content_type,
        filename=name_safe(found.name, found.content_type),  # uploads before it: as stored
        inline=found.content_type.startswith("image/"),
    )


def signup(request: HttpRequest) -> HttpResponse:
    # Sync: the form's checks (a unique username, the password validators) read the database.
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_signup(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                email=form.cleaned_data["email"],
                address=request.META.get("REMOTE_ADDR"),
            )
        except protocol.ChatError as error:
            form.add_error("email", _refused(error))
        else:
            login(request, user)
            return redirect("index")
    return render(request, "registration/signup.html", {"form": form})


def _refused(error: protocol.ChatError) -> str:
    """A refusal as a form shows it, with how long to wait."""
    if error.retry_after:
        return f"{error.detail.capitalize()} (in {max(1, round(error.retry_after / 60))} min)."
    return f"{error.detail.capitalize()}."


class PasswordChange(auth_views.PasswordChangeView):
    """Django's password change: this session stays signed in, every other
    one of the user ends, and their sockets close (4401)."""

    def form_valid(self, form):
        with password_change_keeping(self.request.session):
            return super().form_valid(form)


class PasswordReset(auth_views.PasswordResetView):
    """Django's reset request, within the mail rates (the same answer whether
    or not an account has the address), its email sent by a task."""

    form_class = ResetForm

    def form_valid(self, form):
        try:
            password_reset_allowed(
                email=form.cleaned_data["email"], address=self.request.META.get("REMOTE_ADDR")
            )
        except protocol.ChatError as error:
            form.add_error("email", _refused(error))
            return self.form_invalid(form)
        return super().form_valid(form)


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    """Django's reset by email link: every session ends, and the user's API
    tokens are revoked, their sockets closed."""

    def form_valid(self, form):
        response = super().form_valid(form)
        user_password_reset(user=form.user)
        return response


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    """Settings: the email address (verified or not), missed-message emails,
    and exports of the user's own messages."""
    user = cast(User, request.user)
    profile = profile_get(user=user)
    initial = {"email": user.email, "notify_email": profile.notify_email}
    form = EmailSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        address = request.META.get("REMOTE_ADDR")
        try:
            changed = user_email_settings(user=user, address=address, **form.cleaned_data)
        except protocol.ChatError as error:
            messages.error(request, _refused(error))
            return redirect("settings_page")
        if changed:
            messages.success(request, "Saved. Check your inbox for the link that confirms it.")
        else:
            messages.success(request, "Saved.")
        return redirect("settings_page")
    context = {
        "form": form,
        "verified": bool(user.email) and profile.verified_email == user.email,
        "exports": exports_list(user=user),
    }
    return render(request, "chat/settings.html", context)


@require_POST
@login_required
async def export_mine_form(request: HttpRequest) -> HttpResponse:
    await export_request(user=await _signed_in(request), slug=None)
    messages.success(request, "Your export has started: it is listed below once it is ready.")
    return redirect("settings_page")


def email_verify_page(request: HttpRequest, token: str) -> HttpResponse:
    """The link in a verification email: works without a login."""
    verified = email_verify(token=token)
    return render(
        request, "chat/email_verified.html", {"verified": verified}, status=200 if verified else 400
    )


@csrf_exempt  # the signed token is the credential; RFC 8058's POST comes with no cookie
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The one-click link of every missed-message email: a POST (RFC 8058, or
    the page's button) turns those emails off, without a login; a GET shows
    the button, so that a mail scanner following links changes nothing."""
    user_id = unsubscribe_user(token=token)
    if user_id is None:
        return render(request, "chat/unsubscribe.html", {"valid": False}, status=400)
    if request.method == "POST":
        notify_unsubscribe(user_id=user_id)
    return render(
        request, "chat/unsubscribe.html", {"valid": True, "done": request.method == "POST"}
    )


@require_POST
@login_required
async def room_create_form(request: HttpRequest) -> HttpResponse:
    form = RoomForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, "; ".join(str(e) for errors in form.errors.values() for e in errors)
        )
        return redirect("index")
    try:
        room = await room_create(creator=await _signed_in(request), **form.cleaned_data)
    except protocol.ChatError as error:
        messages.error(request, error.detail)
        return redirect("index")
    return redirect(f"/#{room.slug}")


@require_POST
@login_required
async def room_invite_form(request: HttpRequest, slug: str) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        username = form.cleaned_data["username"]
        try:
            await membership_invite(slug=slug, inviter=await _signed_in(request), username=username)
            messages.success(request, f"{username} can now use {slug}.")
        except protocol.ChatError as error:
            messages.error(request, error.detail)
    return redirect(f"/#{slug}")


@login_required
async def tokens_page(request: HttpRequest) -> HttpResponse:
    """Settings: the user's API tokens. Creating one shows its secret, once."""
    user = await _signed_in(request)
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        created = await token_create(user=user, name=form.cleaned_data["name"])
        form = TokenForm()
    context = {
        "user": user,
        "form": form,
        "created": created,
        "tokens": await tokens_list(user=user),
    }
    return render(request, "chat/tokens.html", context)


@require_POST
@login_required
async def token_revoke_form(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        await token_revoke(user=await _signed_in(request), token_id=token_id)
    except protocol.ChatError:
        pass  # revoked already, maybe in another tab: the list shows what is left
    return redirect("tokens_page")


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and Redis (if configured) answer, else 503; the
    JSON names each check."""
    checks = await health_checks()
    healthy = all(value in ("ok", "not configured") for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )


def readyz(request: HttpRequest) -> JsonResponse:
    """For the proxy: 200 while this process takes new clients, 503 once it is stopping."""
    if draining():
        return JsonResponse({"status": "stopping"}, status=503)
    return JsonResponse({"status": "ok"})


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for internal addresses or CHAT_METRICS_TOKEN only."""
    if not metrics_allowed(request):
        return HttpResponse(status=404)
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
