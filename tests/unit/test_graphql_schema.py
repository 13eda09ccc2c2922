"""docs/schema.graphql is the schema's SDL, as the code builds it."""

from pathlib import Path

from chat.graphql.schema import schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.graphql"


def test_the_checked_in_schema_is_up_to_date() -> None:
    assert DOC.read_text() == schema.as_str() + "\n", (
        "run `make spec` and commit docs/schema.graphql"
    )


def test_every_type_and_root_field_is_described() -> None:
    sdl = schema._schema
    for root in (sdl.query_type, sdl.mutation_type, sdl.subscription_type):
        assert root is not None
        undocumented = [name for name, field in root.fields.items() if not field.description]
        assert not undocumented, f"{root.name}: {undocumented}"
