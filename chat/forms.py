"""Form validation for the HTML views. Forms validate; services write."""

from django import forms
from django.contrib.auth.forms import BaseUserCreationForm, PasswordResetForm
from django.contrib.auth.models import User
from django.core.validators import RegexValidator

from chat import protocol
from chat.taskqueue import task_enqueue


class SignupForm(BaseUserCreationForm):
    email = forms.EmailField(
        required=False,
        help_text="Optional: for resetting your password, and for email about missed messages.",
    )

    class Meta:
        model = User
        fields = ("username", "email")


class EmailSettingsForm(forms.Form):
    email = forms.EmailField(
        required=False, help_text="A new address is sent a link to confirm it."
    )
    notify_email = forms.BooleanField(
        required=False,
        label="Email me about mentions and direct messages I miss",
    )


class ResetForm(PasswordResetForm):
    """Django's password reset, with the email sent by a task (chat/tasks.py)."""

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        task_enqueue("chat.tasks.password_reset_send", user_id=context["user"].pk)


class RoomForm(forms.Form):
    slug = forms.CharField(
        max_length=50,
        validators=[RegexValidator(protocol.SLUG_PATTERN, "Use a-z, 0-9, '_' and '-'.")],
    )
    title = forms.CharField(max_length=200, required=False)
    private = forms.BooleanField(required=False)


class InviteForm(forms.Form):
    username = forms.CharField(max_length=150)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What it is for, e.g. 'bot'.")
