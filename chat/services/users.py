"""Accounts."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser


def user_signup(*, username: str, password: str) -> AbstractBaseUser:
    """Create an active user with this password (validated by the caller's form)."""
    return get_user_model().objects.create_user(username=username, password=password)
