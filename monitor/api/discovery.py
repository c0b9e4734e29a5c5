"""Google's API discovery document for the Perspective-compatible API, so Google's own clients work unchanged.

`googleapiclient.discovery.build("commentanalyzer", "v1alpha1", developerKey=KEY,
discoveryServiceUrl="http://HOST:PORT/$discovery/rest?version=v1alpha1")` reads this document and then calls
POST {rootUrl}v1alpha1/comments:analyze?key=KEY&alt=json. What google-api-python-client needs from it:

- `rootUrl` + `servicePath` is the base every method path is joined to; plain http and any host are fine (the
  client demands neither https nor googleapis.com). The client uses discoveryServiceUrl exactly as given (as a
  URI template), and sends `?key=` on the discovery fetch too, so that fetch must not need a valid key.
- No `auth` section: with OAuth scopes listed, a client built without developerKey (against `--no-auth`) would go
  looking for Google credentials. No `mtlsRootUrl` either, which the client may switch to.
- Every `$ref` must name a schema here: the client renders the request and response into the method's docstring
  while building, and a dangling name fails build().

Without discoveryServiceUrl the client only tries googleapis.com (its DISCOVERY_URI and V2_DISCOVERY_URI), so it
never reaches civmon by itself; the V1 form `/discovery/v1/apis/commentanalyzer/v1alpha1/rest` is served too for
callers who copy that template with civmon's host in it.

The schemas are converted from the pydantic models in `schemas.py`, so the document cannot drift from what the
server accepts. Perspective's `comments.suggestscore` is left out: civmon takes no score suggestions. Batch
requests (`batchPath`) are not served: send one request per comment, or many texts to POST /v1/score.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema

from monitor.api.schemas import AnalyzeCommentRequest, AnalyzeCommentResponse, ErrorResponse

NAME = "commentanalyzer"
VERSION = "v1alpha1"
ANALYZE_PATH = f"{VERSION}/comments:analyze"

# Perspective's standard query parameters: code written against its document may pass any of them, and the
# client refuses a keyword its document does not list.
_IGNORED = "Accepted for compatibility with Google's clients; civmon ignores it."
STANDARD_PARAMETERS: dict[str, dict[str, Any]] = {
    "key": {
        "type": "string",
        "description": "API key (`civmon keys create NAME`); `Authorization: Bearer` also works.",
    },
    "alt": {"type": "string", "default": "json", "enum": ["json"], "description": "Response format: JSON only."},
    "fields": {"type": "string", "description": _IGNORED + " The whole response is returned."},
    "prettyPrint": {"type": "boolean", "default": "true", "description": _IGNORED},
    "quotaUser": {"type": "string", "description": _IGNORED + " Quotas are per API key."},
    "$.xgafv": {"type": "string", "enum": ["1", "2"], "description": _IGNORED},
    "access_token": {"type": "string", "description": _IGNORED + " Pass a civmon key as `key` or Bearer."},
    "oauth_token": {"type": "string", "description": _IGNORED + " Pass a civmon key as `key` or Bearer."},
    "callback": {"type": "string", "description": _IGNORED + " No JSONP."},
    "uploadType": {"type": "string", "description": _IGNORED},
    "upload_protocol": {"type": "string", "description": _IGNORED},
}

# pydantic's JSON types -> discovery's formats, as Perspective's own document gives them
_FORMATS = {"number": "float", "integer": "int32"}
_COPIED = ("$ref", "type", "format", "description", "enum", "pattern")
# JSON Schema words with nothing to say in discovery (titles repeat the names)
_DROPPED = ("title", "default", "maxLength")  # limits, like defaults, are enforced by the server
_KNOWN = {*_COPIED, *_DROPPED, "minimum", "maximum", "items", "additionalProperties", "properties", "required"}


def discovery_document(root_url: str) -> dict[str, Any]:
    """The discovery document with every method under `root_url`, the server's base URL as callers reach it."""
    parts = urlsplit(root_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"root_url must be an absolute http(s) URL such as https://civmon.example.org/, not {root_url!r}"
        )
    root = root_url if root_url.endswith("/") else root_url + "/"
    return {
        "kind": "discovery#restDescription",
        "discoveryVersion": "v1",
        "id": f"{NAME}:{VERSION}",
        "name": NAME,
        "version": VERSION,
        "title": "civmon Perspective-compatible API",
        "description": (
            "civmon's self-hosted, Perspective-compatible comment scoring API (AnalyzeComment). "
            "Scores come from civmon's configured model; batch requests are not supported."
        ),
        "protocol": "rest",
        "rootUrl": root,
        "servicePath": "",
        "baseUrl": root,  # the pre-rootUrl spelling, for older clients
        "basePath": urlsplit(root).path,
        "batchPath": "batch",
        "parameters": {name: {**spec, "location": "query"} for name, spec in STANDARD_PARAMETERS.items()},
        "resources": {"comments": {"methods": {"analyze": _analyze_method()}}},
        "schemas": _schemas(),
    }


def _analyze_method() -> dict[str, Any]:
    return {
        "id": f"{NAME}.comments.analyze",
        "path": ANALYZE_PATH,
        "flatPath": ANALYZE_PATH,
        "httpMethod": "POST",
        "description": "Analyzes the provided text and returns scores for the requested attributes.",
        "parameters": {},
        "parameterOrder": [],
        "request": {"$ref": AnalyzeCommentRequest.__name__},
        "response": {"$ref": AnalyzeCommentResponse.__name__},
    }


def _schemas() -> dict[str, dict[str, Any]]:
    """Every model the request and response reach, each as a discovery schema under its own name."""
    _, combined = models_json_schema(
        [(AnalyzeCommentRequest, "validation"), (AnalyzeCommentResponse, "serialization")],
        by_alias=True,
        ref_template="{model}",  # discovery refers to schemas by bare name
    )
    return {name: {"id": name, **_convert(name, node)} for name, node in combined["$defs"].items()}


def _convert(where: str, node: dict[str, Any]) -> dict[str, Any]:
    """One JSON Schema node in discovery's dialect (JSON Schema draft 3: no unions, `required` per property)."""
    node = _without_null(where, node)
    unknown = set(node) - _KNOWN
    if unknown:  # fail loudly rather than describe a field wrongly
        raise TypeError(f"{where}: discovery.py does not translate {sorted(unknown)} from schemas.py; teach _convert")
    out = {word: node[word] for word in _COPIED if word in node}
    if node.get("type") in _FORMATS:
        out.setdefault("format", _FORMATS[node["type"]])
    for bound in ("minimum", "maximum"):  # discovery writes bounds as strings
        if bound in node:
            out[bound] = str(node[bound])
    if "items" in node:
        out["items"] = _convert(f"{where}[]", node["items"])
    if isinstance(node.get("additionalProperties"), dict):  # a dict's values; models' `false` has no equivalent
        out["additionalProperties"] = _convert(f"{where}{{}}", node["additionalProperties"])
    if "properties" in node:
        required = set(node.get("required", ()))
        out["properties"] = {
            name: _convert(f"{where}.{name}", prop) | ({"required": True} if name in required else {})
            for name, prop in node["properties"].items()
        }
    return out


def _without_null(where: str, node: dict[str, Any]) -> dict[str, Any]:
    """`X | None` as plain X: discovery marks optional fields by leaving `required` out, not with a null type."""
    if "anyOf" not in node and "allOf" not in node:
        return node
    variants = [v for v in node.get("anyOf", node.get("allOf")) if v.get("type") != "null"]
    if len(variants) != 1:
        raise TypeError(f"{where}: discovery documents have no unions; give the field one type in schemas.py")
    outer = {k: v for k, v in node.items() if k not in ("anyOf", "allOf")}
    return {**variants[0], **outer}


def root_url(request: Request) -> str:
    """The server's base URL as this caller reached it: the Host header, uvicorn's --root-path, and the scheme
    from X-Forwarded-Proto where uvicorn trusts the proxy (--forwarded-allow-ips). uvicorn ignores
    X-Forwarded-Host, so a reverse proxy must pass Host through (nginx: `proxy_set_header Host $host`).

    Override with `app.dependency_overrides[root_url]` to serve a configured public URL instead.
    """
    return str(request.base_url)


router = APIRouter(tags=["discovery"])
_NOT_FOUND = {404: {"model": ErrorResponse, "description": "No such API or version."}, "4XX": {"model": ErrorResponse}}


@router.get("/$discovery/rest", responses=_NOT_FOUND)
def discovery_v2(
    root: Annotated[str, Depends(root_url)],
    version: Annotated[str, Query(description="API version; civmon serves v1alpha1.")] = VERSION,
) -> JSONResponse:
    """Google's discovery document, where googleapiclient's V2 form asks for it (`discoveryServiceUrl`)."""
    return _document_or_404(root, NAME, version)


@router.get("/discovery/v1/apis/{api}/{version}/rest", responses=_NOT_FOUND)
def discovery_v1(api: str, version: str, root: Annotated[str, Depends(root_url)]) -> JSONResponse:
    """The same document under discovery's V1 path."""
    return _document_or_404(root, api, version)


def _document_or_404(root: str, api: str, version: str) -> JSONResponse:
    if (api, version) == (NAME, VERSION):
        return JSONResponse(discovery_document(root))
    message = (
        f"No discovery document for {api} {version}: civmon serves {NAME} {VERSION}, "
        f"at /$discovery/rest?version={VERSION}."
    )
    return JSONResponse({"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}, status_code=404)
