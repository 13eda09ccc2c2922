"""The GraphQL document limits, without a server: hostile documents are
refused by validation, before any resolver (or the database) runs."""

import pytest
from graphql import GraphQLError

from chat.graphql import limits
from chat.graphql.schema import schema

SCHEMA = schema._schema


def refusal(source: str) -> str:
    with pytest.raises(GraphQLError) as caught:
        limits.document_check(SCHEMA, source)
    return caught.value.message


def test_a_plain_query_passes() -> None:
    limits.document_check(SCHEMA, "{ rooms { slug unread } me { name } }")


def test_nesting_past_the_depth_limit_is_refused() -> None:
    # 500 levels: the parser stops, with a clear message; 20 levels: the depth limit.
    five_hundred = "{ me " + "{ name " * 500 + "}" * 500 + "}"
    assert "nested too deeply" in refusal(five_hundred)
    twenty = "{ me " + "{ name " * 20 + "}" * 20 + "}"
    assert "exceeds maximum operation depth of 10" in refusal(twenty)
    # The deepest real selection is well within it.
    limits.document_check(
        SCHEMA, '{ messages(room: "a") { edges { node { quote { author { name } } } } } }'
    )


def test_ten_thousand_aliases_are_refused() -> None:
    source = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(10_000)) + " }"
    assert "token" in refusal(source).lower()
    twenty = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(20)) + " }"
    assert "aliases" in refusal(twenty)


def test_fields_past_the_limit_are_refused() -> None:
    fields = " ".join(["slug"] * (limits.MAX_FIELDS + 5))
    assert f"at most {limits.MAX_FIELDS} fields" in refusal("{ rooms { " + fields + " } }")


def test_fragments_that_loop_are_refused() -> None:
    source = (
        "{ rooms { ...a } }\nfragment a on Room { slug ...b }\nfragment b on Room { title ...a }"
    )
    assert "Cannot spread fragment" in refusal(source)


def test_introspection_is_within_the_limits() -> None:
    from graphql import get_introspection_query

    limits.document_check(SCHEMA, get_introspection_query(descriptions=True))
