"""The GraphQL API at /graphql/: the schema (schema.py) over the protocol's
types (types.py), its limits (limits.py) and its HTTP view (view.py). Its
subscriptions are served by the socket at the same path
(chat/realtime/graphql.py). docs/graphql.md describes it; docs/schema.graphql
is its SDL."""
