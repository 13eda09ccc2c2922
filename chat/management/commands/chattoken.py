"""`manage.py chattoken USERNAME [--create-user] [--name N] [--list] [--revoke ID]`."""

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat import protocol
from chat.selectors.tokens import tokens_list
from chat.services.tokens import token_create, token_revoke


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME and print it on stdout (it is not shown again);"
        " or list or revoke the user's tokens."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--create-user", action="store_true", help="create the user if it does not exist"
        )
        parser.add_argument("--name", default="", help="a label for the new token")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--list", action="store_true", help="list the user's tokens")
        action.add_argument(
            "--revoke", type=int, metavar="ID", help="revoke a token; its open sockets close"
        )

    def handle(self, *args, username: str, create_user: bool, name: str, **options) -> None:
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create_user:
                raise CommandError(f"no user {username!r}; pass --create-user to create one")
            user = User.objects.create_user(username=username)
        if options["list"]:
            for token in async_to_sync(tokens_list)(user=user):
                self.stdout.write(
                    f"{token.id}\t{token.prefix}…\t{token.created:%Y-%m-%d}\t{token.name}"
                )
        elif options["revoke"] is not None:
            try:
                async_to_sync(token_revoke)(user=user, token_id=options["revoke"])
            except protocol.ChatError as error:
                raise CommandError(error.detail) from None
            self.stderr.write(f"revoked token {options['revoke']}")
        else:
            self.stdout.write(async_to_sync(token_create)(user=user, name=name).token)
