"""The AsyncAPI 3.0 document of the WebSocket protocol, built from the pydantic
models in chat/protocol/: the same models that validate frames.

Served at /api/v1/asyncapi.json; checked in as docs/asyncapi.yaml
(`make spec` rewrites it, and a test fails when it is out of date).
"""

import inspect
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chat import protocol

REF = "#/components/schemas/{model}"


def _frame_type(model: type[BaseModel]) -> str:
    return get_args(model.model_fields["type"].annotation)[0]


def _messages(models: tuple[type[BaseModel], ...], *, direction: str) -> dict[str, Any]:
    return {
        model.__name__: {
            "name": _frame_type(model),
            "title": f"{_frame_type(model)} ({direction})",
            "summary": (inspect.getdoc(model) or "").partition("\n")[0] if model.__doc__ else "",
            "contentType": "application/json",
            "payload": {"$ref": REF.format(model=model.__name__)},
        }
        for model in models
    }


def frame_schemas() -> dict[str, Any]:
    """JSON Schemas of every frame, by model name: client frames as they are
    validated, server frames as they are sent."""
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((model, "validation") for model in get_args(protocol.AnyClientFrame)),
        *((model, "serialization") for model in get_args(protocol.ServerFrame)),
    ]
    _, schemas = models_json_schema(modes, ref_template=REF)
    return schemas["$defs"]


def asyncapi_document() -> dict[str, Any]:
    client = _messages(protocol.AnyClientFrame.__args__, direction="client to server")
    server = _messages(protocol.ServerFrame.__args__, direction="server to client")

    def channel_messages() -> dict[str, Any]:
        return {name: {"$ref": f"#/components/messages/{name}"} for name in client | server}

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Chat WebSocket protocol",
            "version": str(protocol.PROTOCOL_VERSION),
            "description": (
                "One socket carries many rooms. Every frame is a JSON object in a text frame, "
                "with a `type`. docs/protocol.md explains the flow, delivery guarantees and "
                "recovery with `since`."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:8000",
                "protocol": "ws",
                "description": "`make run`. Behind TLS, use wss.",
                "security": [
                    {"$ref": "#/components/securitySchemes/bearer"},
                    {"$ref": "#/components/securitySchemes/session"},
                ],
            }
        },
        "channels": {
            "chat": {
                "address": "/ws/chat/",
                "title": "A socket for any number of rooms",
                "messages": channel_messages(),
            },
            "chatRoom": {
                "address": "/ws/chat/{room}/",
                "title": "The same, joining `room` on connect",
                "parameters": {"room": {"description": "A room slug."}},
                "messages": channel_messages(),
            },
        },
        "operations": {
            f"{action}{suffix}": {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel}"},
                "summary": f"Frames the server {action}s.",
                "messages": [
                    {"$ref": f"#/channels/{channel}/messages/{name}"}
                    for name in (client if action == "receive" else server)
                ],
            }
            for channel, suffix in (("chat", ""), ("chatRoom", "InRoom"))
            for action in ("receive", "send")
        },
        "components": {
            "schemas": frame_schemas(),
            "messages": client | server,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token in the Authorization header, never in the URL.",
                },
                "session": {
                    "type": "httpApiKey",
                    "in": "cookie",
                    "name": "sessionid",
                    "description": "Django's session cookie (browsers); needs an allowed Origin.",
                },
            },
        },
    }


def asyncapi_yaml() -> str:
    import yaml

    return yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    print(asyncapi_yaml(), end="")
