"""Who does something: a signed-in user, or a guest known only by name."""

from dataclasses import dataclass

from django.contrib.auth.models import User

from chat import protocol


@dataclass(frozen=True, slots=True)
class Actor:
    """A signed-in user, or a guest (user is None) known only by name."""

    name: str
    user: User | None = None

    @property
    def guest(self) -> bool:
        return self.user is None

    @property
    def user_id(self) -> int | None:
        return None if self.user is None else self.user.pk

    @property
    def author(self) -> protocol.Author:
        return protocol.Author(name=self.name, guest=self.guest)
