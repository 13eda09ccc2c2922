"""`manage.py chattoken USERNAME [--create-user]`: print a new API token on stdout."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.services.tokens import token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it on stdout (it is not shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--create-user", action="store_true", help="create the user if it does not exist"
        )
        parser.add_argument("--name", default="", help="a label for the token")

    def handle(self, *args, username: str, create_user: bool, name: str, **options) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create_user:
                raise CommandError(f"no user {username!r}; pass --create-user to create one")
            user = User.objects.create_user(username=username)
        self.stdout.write(token_create(user=user, name=name))
