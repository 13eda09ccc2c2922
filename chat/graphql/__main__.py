"""`python -m chat.graphql` prints the schema's SDL (docs/schema.graphql)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django.setup()

from chat.graphql.schema import schema  # noqa: E402 (after Django is set up)

print(schema.as_str())
