"""docs/protocol.md stays true: each example is checked against the schemas,
and every frame type, error code and close code is documented."""

import json
import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, TypeAdapter

from chat import protocol

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
EXAMPLES = re.findall(r"```json (client|server)\n(.*?)```", DOC, re.DOTALL)
SERVER_FRAMES = TypeAdapter(Annotated[protocol.ServerFrame, Field(discriminator="type")])


def examples(side: str) -> list[str]:
    return [text for kind, text in EXAMPLES if kind == side]


def test_every_client_example_parses():
    types = {protocol.parse_frame(text).type for text in examples("client")}
    assert types == set(protocol.CLIENT_FRAME_TYPES)


def test_every_server_example_is_a_valid_frame_with_every_field():
    seen = set()
    for text in examples("server"):
        frame = SERVER_FRAMES.validate_json(text)
        # The example shows every field the server sends, and nothing else.
        assert json.loads(protocol.encode(frame)).keys() == json.loads(text).keys(), text
        seen.add(frame.type)
    assert seen == {model.model_fields["type"].default for model in protocol.ServerFrame.__args__}


def test_every_error_code_and_close_code_is_documented():
    for code in protocol.ErrorCode:
        assert f"| `{code.value}` |" in DOC, code
    for close in protocol.CloseCode:
        assert f"| `{close.value}` |" in DOC, close
