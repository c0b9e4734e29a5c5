"""The discovery document, served over real HTTP on loopback and read by Google's own google-api-python-client."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from googleapiclient import discovery as google
from googleapiclient.errors import UnknownApiNameOrVersion
from pydantic import BaseModel

from monitor.api import schemas
from monitor.api.discovery import _convert, discovery_document, router

KEY = "civmon-test-key"
BODY = {
    "comment": {"text": "You are wrong, and I will say why."},
    "requestedAttributes": {"TOXICITY": {"scoreType": "PROBABILITY"}, "RESPECT": {}},
    "languages": ["en"],
    "doNotStore": True,
    "clientToken": "token-7",
}
RESPONSE = {
    "attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.25, "type": "PROBABILITY"}, "spanScores": []}},
    "languages": ["en"],
    "detectedLanguages": ["en"],
    "clientToken": "token-7",
}
MODELS = [
    schemas.AnalyzeCommentRequest,
    schemas.AnalyzeCommentResponse,
    schemas.TextEntry,
    schemas.Context,
    schemas.ArticleAndParentComment,
    schemas.AttributeParameters,
    schemas.AttributeScores,
    schemas.SpanScore,
    schemas.Score,
]


class Server:
    """uvicorn serving the discovery router, in a thread, on a free loopback port."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        app = FastAPI()
        app.include_router(router)
        # Stands in for the lead's real comments:analyze route (tested in its own module): it records what the
        # client sent and answers a fixed Perspective response, so this module tests the document alone.
        app.add_api_route("/v1alpha1/comments:analyze", self._analyze, methods=["POST"])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _analyze(self, request: Request) -> dict[str, Any]:
        received = {"path": request.url.path, "query": dict(request.query_params), "body": await request.json()}
        self.received.append(received)
        return RESPONSE

    @property
    def url(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def discovery_url(self, version: str = "v1alpha1") -> str:
        return f"{self.url}/$discovery/rest?version={version}"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    served = Server()
    served.thread.start()
    while not served.server.started:
        assert served.thread.is_alive(), "uvicorn did not start"
        served.thread.join(0.02)
    yield served
    served.server.should_exit = True
    served.thread.join(10)


def build(server: Server, **options: Any) -> Any:
    """Google's client exactly as a Perspective user builds it, with civmon's URL."""
    return google.build(
        "commentanalyzer", "v1alpha1", discoveryServiceUrl=server.discovery_url(), static_discovery=False, **options
    )


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_googles_client_posts_analyze_with_key_and_body_and_reads_the_response(server: Server) -> None:
    server.received.clear()
    client = build(server, developerKey=KEY)
    assert client.comments().analyze(body=BODY).execute() == RESPONSE
    [received] = server.received
    assert received["path"] == "/v1alpha1/comments:analyze"
    assert received["query"] == {"key": KEY, "alt": "json"}
    assert received["body"] == BODY
    schemas.AnalyzeCommentRequest.model_validate(received["body"])  # what the client sent, the server accepts


def test_a_client_without_a_key_needs_no_google_credentials(server: Server) -> None:
    # An `auth` section with OAuth scopes would send a keyless client (against `--no-auth`) after Google's.
    server.received.clear()
    assert build(server).comments().analyze(body=BODY).execute() == RESPONSE
    assert "key" not in server.received[0]["query"]


def test_perspectives_standard_parameters_pass_through_the_client(server: Server) -> None:
    # code written against Perspective's document may pass these; the client refuses keywords a document lacks
    server.received.clear()
    build(server, developerKey=KEY).comments().analyze(body=BODY, fields="attributeScores", prettyPrint=False).execute()
    assert server.received[0]["query"] == {
        "key": KEY,
        "alt": "json",
        "fields": "attributeScores",
        "prettyPrint": "false",
    }


def test_the_client_documents_the_method_from_the_models(server: Server) -> None:
    analyze = build(server, developerKey=KEY).comments().analyze
    # the client renders the request and response schemas into the docstring: both resolved by name
    assert "requestedAttributes" in analyze.__doc__ and "spanScores" in analyze.__doc__
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        analyze(body=BODY, suggestion=True)


def test_every_model_is_its_own_schema_with_its_wire_fields_and_every_ref_resolves() -> None:
    document = discovery_document("http://127.0.0.1:8080/")
    found = document["schemas"]
    assert set(found) == {model.__name__ for model in MODELS}
    for model in MODELS:
        fields = {field.alias or name for name, field in model.model_fields.items()}
        assert set(found[model.__name__]["properties"]) == fields, model.__name__
    refs = [value for key, value in _walk(document) if key == "$ref"]
    assert refs and set(refs) <= set(found)
    score = found["Score"]["properties"]
    assert score["value"] == {"type": "number", "format": "float", "required": True}
    assert found["SpanScore"]["properties"]["begin"]["format"] == "int32"
    assert found["AnalyzeCommentRequest"]["properties"]["requestedAttributes"]["additionalProperties"] == {
        "$ref": "AttributeParameters"
    }
    assert "required" not in found["AnalyzeCommentRequest"]["properties"]["context"]
    assert document["resources"]["comments"]["methods"].keys() == {"analyze"}  # no suggestscore


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_root_url_follows_the_host_and_scheme_the_caller_reached(server: Server) -> None:
    status, direct = fetch(server.discovery_url())
    assert (status, direct["rootUrl"]) == (200, server.url + "/")
    # behind a reverse proxy on loopback (trusted by uvicorn): its Host and X-Forwarded-Proto
    proxied = {"Host": "civmon.example.org:8443", "X-Forwarded-Proto": "https"}
    status, document = fetch(server.discovery_url(), proxied)
    assert (status, document["rootUrl"]) == (200, "https://civmon.example.org:8443/")
    assert fetch(f"{server.url}/discovery/v1/apis/commentanalyzer/v1alpha1/rest", proxied) == (200, document)


@pytest.mark.parametrize(
    "path",
    ["/$discovery/rest?version=v1", "/discovery/v1/apis/commentanalyzer/v1/rest", "/discovery/v1/apis/x/v1alpha1/rest"],
)
def test_an_unknown_api_or_version_is_a_perspective_404(server: Server, path: str) -> None:
    status, body = fetch(server.url + path)
    assert status == 404
    assert body["error"]["code"] == 404 and body["error"]["status"] == "NOT_FOUND"
    assert "/$discovery/rest?version=v1alpha1" in body["error"]["message"]


def test_googles_client_reads_the_404_as_an_unknown_version(server: Server) -> None:
    with pytest.raises(UnknownApiNameOrVersion):
        google.build("commentanalyzer", "v1", discoveryServiceUrl=server.discovery_url("v1"), static_discovery=False)


def test_a_root_url_that_is_not_absolute_http_is_refused() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        discovery_document("civmon.example.org")
    assert (
        discovery_document("https://civmon.example.org/perspective")["rootUrl"]
        == "https://civmon.example.org/perspective/"
    )


def test_a_union_the_dialect_cannot_say_is_refused_not_misdescribed() -> None:
    class Loose(BaseModel):
        value: int | str

    with pytest.raises(TypeError, match="Loose.value: discovery documents have no unions"):
        _convert("Loose", Loose.model_json_schema())
