"""What a GraphQL document may ask for, checked before anything runs: the
same rules over HTTP (as the schema's extensions) and over the socket (by
`document_check`, for subscriptions). A document past them is refused with a
`bad_request` error naming the limit, and touches no database."""

import functools

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    ValidationContext,
    parse,
    specified_rules,
    validate,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_FIELDS = 200
MAX_TOKENS = 2000
# The most items a list field returns at once (`first`, `last`).
MAX_PAGE = 100


class FieldCountRule(ASTValidationRule):
    """At most MAX_FIELDS field selections in a document, fragments counted
    where they are written (so a fragment spread many times is bounded by the
    alias and depth limits, not this one)."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.fields = 0

    def enter_field(self, node: FieldNode, *_args: object) -> None:
        self.fields += 1
        if self.fields == MAX_FIELDS + 1:
            self.report_error(GraphQLError(f"a document may select at most {MAX_FIELDS} fields"))


# The validation rules of the limits (tokens are the parser's: MAX_TOKENS).
RULES: list[type[ASTValidationRule]] = [
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
    FieldCountRule,
]
# The schema's extensions that hold them over HTTP (chat/graphql/schema.py),
# and keep the last CACHED documents parsed and validated.
EXTENSIONS = [
    lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
    lambda: AddValidationRules(RULES),
    lambda: ParserCache(maxsize=CACHED),
    lambda: ValidationCache(maxsize=CACHED),
]


def document_check(schema: GraphQLSchema, source: str) -> DocumentNode:
    """The parsed document, if it is valid and within the limits; else the
    first GraphQLError. A client sends the same few documents again and
    again: the answer is kept for the last CACHED of them (validation is most
    of an operation's cost)."""
    document, error = _checked(schema, source)
    if error is not None:
        raise error
    assert document is not None
    return document


CACHED = 256


@functools.lru_cache(maxsize=CACHED)
def _checked(schema: GraphQLSchema, source: str) -> tuple[DocumentNode | None, GraphQLError | None]:
    try:
        document = parse(source, max_tokens=MAX_TOKENS)
    except GraphQLError as error:
        return None, error
    errors = validate(schema, document, [*RULES, *specified_rules])  # the limits' errors first
    return (None, errors[0]) if errors else (document, None)
