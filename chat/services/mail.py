"""Email: what the site sends, and the signed links in it.

Every message is plain text plus HTML, from templates under
chat/templates/email/. Links carry a signed token (django.core.signing, keyed
by SECRET_KEY, with a salt per purpose), so they work without a login and
cannot be made for another user or address.
"""

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

UNSUBSCRIBE_SALT = "chat.mail.unsubscribe"
VERIFY_SALT = "chat.mail.verify"
# A verification link works for this long.
VERIFY_MAX_AGE = 3 * 24 * 3600


def site_url(path: str) -> str:
    """An absolute link to `path` on the site (CHAT_SITE_URL)."""
    return settings.CHAT_SITE_URL + path


def unsubscribe_url(*, user_id: int) -> str:
    """The one-click link that turns off a user's missed-message emails. It
    does not expire: an old email's link must still work."""
    token = signing.Signer(salt=UNSUBSCRIBE_SALT).sign(str(user_id))
    return site_url(reverse("unsubscribe", args=[token]))


def unsubscribe_user(*, token: str) -> int | None:
    """The user an unsubscribe token was made for, or None if it is forged."""
    try:
        user_id = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token)
    except signing.BadSignature:
        return None
    return int(user_id) if user_id.isdigit() else None


def verify_url(*, user_id: int, email: str) -> str:
    """The link that proves the user reads `email`."""
    token = signing.dumps({"user": user_id, "email": email}, salt=VERIFY_SALT)
    return site_url(reverse("email_verify", args=[token]))


def verify_claim(*, token: str) -> tuple[int, str] | None:
    """(user id, address) of a verification token still in date, or None."""
    try:
        claim = signing.loads(token, salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(claim, dict) or not isinstance(claim.get("user"), int):
        return None
    return claim["user"], str(claim.get("email", ""))


class _Mail(EmailMultiAlternatives):
    def message(self):  # type: ignore[override]  # Django 5.2 takes no policy (the stubs: 6.0)
        message = super().message()
        # List-Unsubscribe is one long URL: folded to 78 columns, Python would
        # RFC 2047-encode it, and mail clients would not find the link.
        message.policy = message.policy.clone(max_line_length=998)
        return message


def mail_build(
    *, to: str, subject: str, template: str, context: dict, unsubscribe: str | None = None
) -> _Mail:
    """An email from `template`.txt and `template`.html; with `unsubscribe`,
    RFC 8058's one-click headers name that link."""
    context = {**context, "unsubscribe": unsubscribe, "site": settings.CHAT_SITE_URL}
    headers = {}
    if unsubscribe:
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    mail = _Mail(
        subject=subject,
        body=render_to_string(f"email/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=headers,
    )
    mail.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    return mail
