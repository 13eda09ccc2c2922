"""Form validation for the HTML views. Forms validate; services write."""

from django import forms
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.auth.models import User
from django.core.validators import RegexValidator

from chat import protocol


class SignupForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("username",)


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
