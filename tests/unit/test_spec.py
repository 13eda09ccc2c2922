"""The machine-readable descriptions: AsyncAPI for the socket, OpenAPI for HTTP.

Both are generated from code (chat/protocol/ and the django-ninja API) and
checked by validators: the official AsyncAPI 3.0.0 JSON Schema (with
jsonschema) and openapi-spec-validator.
"""

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate as openapi_validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from chat import protocol, spec

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_SCHEMA = json.loads((ROOT / "tests/schemas/asyncapi-3.0.0.json").read_text())


def asyncapi_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(ASYNCAPI_SCHEMA)
    return [error.message for error in validator.iter_errors(document)]


def test_the_checked_in_asyncapi_document_is_up_to_date():
    checked_in = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())
    assert checked_in == spec.asyncapi_document(), "run `make spec` and commit docs/asyncapi.yaml"


def test_the_asyncapi_document_is_valid_asyncapi_3():
    assert asyncapi_errors(spec.asyncapi_document()) == []


def test_the_validator_catches_a_broken_document():
    broken = copy.deepcopy(spec.asyncapi_document())
    broken["components"]["schemas"]["JoinFrame"]["type"] = 5
    broken["operations"]["send"]["action"] = "shout"
    assert len(asyncapi_errors(broken)) == 2


def test_every_frame_has_a_message_with_the_schema_that_validates_it():
    document = spec.asyncapi_document()
    messages = document["components"]["messages"]
    names = {message["name"] for message in messages.values()}
    assert set(protocol.CLIENT_FRAME_TYPES) <= names
    assert {"hello", "joined", "message", "ack", "error", "presence"} <= names
    # The client frames' schemas accept what parse_frame accepts, and refuse what it refuses.
    components = {"components": document["components"]}
    join = jsonschema.Draft202012Validator({**messages["JoinFrame"]["payload"], **components})
    assert join.is_valid({"type": "join", "room": "lobby", "since": 3})
    assert not join.is_valid({"type": "join", "room": "Lobby!"})
    assert not join.is_valid({"type": "join", "room": "lobby", "extra": 1})


def test_the_openapi_document_is_valid(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    openapi_validate(document)
    assert "/api/v1/rooms/{slug}/messages" in document["paths"]
    broken = copy.deepcopy(document)
    broken["paths"]["/api/v1/rooms"]["get"]["responses"] = "nope"
    with pytest.raises(OpenAPIValidationError):
        openapi_validate(broken)


def test_the_asyncapi_document_is_served(client):
    response = client.get("/api/v1/asyncapi.json")
    assert response.status_code == 200 and response.json() == spec.asyncapi_document()


def test_the_api_docs_load_swagger_from_this_server_not_a_cdn(client):
    page = client.get("/api/v1/docs").content.decode()
    assert "swagger-ui-bundle.js" in page and "cdn.jsdelivr.net" not in page
