"""POST /v1alpha1/comments:analyze, as Perspective answers it: the same request, response and errors.

What differs is documented in the README ("What differs from Perspective"): only English is scored,
`comment.type` HTML is refused (Reddit-style Markdown and plain text are what the model reads), `context`
is accepted and ignored (as Perspective did), and the attributes are the configured model's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from monitor.api.attributes import Attribute
from monitor.api.auth import ServiceDep, caller
from monitor.api.errors import DOCUMENTED, ApiError
from monitor.api.intake import Submission
from monitor.api.schemas import (
    AnalyzeCommentRequest,
    AnalyzeCommentResponse,
    AttributeParameters,
    AttributeScores,
    Score,
    SpanScore,
)
from monitor.api.service import Service
from monitor.api.spans import sentence_spans
from monitor.scoring.results import Result
from monitor.store.keys import KeyInfo

LANGUAGES = ("en",)  # monitor.scoring.text scores English text only
NOT_ENGLISH = "not English (language: "

router = APIRouter(tags=["Perspective"])


@router.post(
    "/v1alpha1/comments:analyze",
    response_model=AnalyzeCommentResponse,
    response_model_exclude_none=True,
    responses=DOCUMENTED,
    summary="Score a comment, as Perspective's comments:analyze does",
)
async def analyze(
    body: AnalyzeCommentRequest, state: ServiceDep, key: Annotated[KeyInfo | None, Depends(caller)]
) -> AnalyzeCommentResponse:
    attributes = _requested(body, state.attributes)
    text = _comment_text(body, state)
    languages = _languages(body.languages, attributes)
    stores = body.community_id is not None and not body.do_not_store
    if stores and key is not None and not key.may_store(body.community_id or ""):
        raise ApiError(
            403,
            f"Key {key.name!r} may not store comments under this communityId: create a key for it "
            "(civmon keys create NAME --community ID), or send doNotStore: true to only score.",
        )
    sentences = sentence_spans(text) if body.span_annotations else []
    summary, *sentence_results = await state.score([text, *(text[b:e] for b, e in sentences)])
    if summary.scores is None:
        if body.drop_unsupported_attributes and (summary.reason or "").startswith(NOT_ENGLISH):
            return _response(body, languages, summary, {})  # every attribute dropped for the comment's language
        raise _unscorable(summary, attributes)
    # without spanAnnotations, one span covers the whole text, as Perspective gives
    spans = (
        list(zip(sentences, sentence_results, strict=True)) if body.span_annotations else [((0, len(text)), summary)]
    )
    response = _response(body, languages, summary, _attribute_scores(attributes, summary, spans))
    if stores:
        submission = Submission(body.community_id or "", body.session_id, text, summary)
        await state.store(submission)
    return response


def _response(
    body: AnalyzeCommentRequest, languages: list[str], summary: Result, scores: dict[str, AttributeScores]
) -> AnalyzeCommentResponse:
    return AnalyzeCommentResponse(
        attribute_scores=scores,
        languages=languages,
        detected_languages=[summary.language] if summary.language else [],
        client_token=body.client_token,
    )


def _requested(body: AnalyzeCommentRequest, available: dict[str, Attribute]) -> dict[str, tuple[Attribute, float]]:
    """The requested attributes the model answers, each with its threshold; the others refused or dropped."""
    if not body.requested_attributes:
        raise ApiError(400, f"requestedAttributes must name at least one attribute: {_names(available)}.")
    unknown = [name for name in body.requested_attributes if name not in available]
    if unknown and not body.drop_unsupported_attributes:
        raise ApiError(
            400,
            f"Attribute {unknown[0]} is not supported by this server's model: it provides {_names(available)}. "
            "Ask for those, or set dropUnsupportedAttributes to leave the others out.",
        )
    chosen = {
        n: (available[n], _threshold(available[n], p)) for n, p in body.requested_attributes.items() if n in available
    }
    if not chosen:
        raise ApiError(400, f"None of the requested attributes is supported: this server provides {_names(available)}.")
    return chosen


def _names(available: dict[str, Attribute]) -> str:
    return ", ".join(available)


def _threshold(attribute: Attribute, parameters: AttributeParameters) -> float:
    if parameters.score_type not in (None, attribute.score_type):
        raise ApiError(
            400, f"Attribute {attribute.name} gives scores of type {attribute.score_type}, not {parameters.score_type}."
        )
    return parameters.score_threshold if parameters.score_threshold is not None else -1.0  # unset: every score


def _comment_text(body: AnalyzeCommentRequest, state: Service) -> str:
    text = body.comment.text
    if text is None or not text.strip():
        raise ApiError(400, "Comment must be non-empty.")
    if body.comment.type == "HTML":
        raise ApiError(400, "comment.type HTML is not supported: send the comment's text as PLAIN_TEXT.")
    if size := state.oversize(text):
        limit = state.settings.api.max_text_bytes
        raise ApiError(
            400, f"Comment text too long: {size:,} bytes of UTF-8, at most {limit:,} ([api] max_text_bytes)."
        )
    return text


def _languages(requested: list[str] | None, attributes: dict[str, tuple[Attribute, float]]) -> list[str]:
    """The languages the comment is scored as: English, which the caller may ask for as en or en-US. As Perspective
    does, a request naming any language an attribute does not support is refused."""
    unsupported = [code for code in requested or () if code.split("-")[0].lower() not in LANGUAGES]
    if unsupported:
        shown = ", ".join(unsupported[:5]) + (f" and {len(unsupported) - 5} more" if len(unsupported) > 5 else "")
        raise ApiError(
            400,
            f"Attribute {next(iter(attributes))} does not support request languages: {shown}. "
            "This server scores English (en).",
        )
    return list(LANGUAGES)


def _unscorable(result: Result, attributes: dict[str, tuple[Attribute, float]]) -> ApiError:
    reason = result.reason or "not scored"
    if reason.startswith(NOT_ENGLISH):
        detected = reason.removeprefix(NOT_ENGLISH).rstrip(")")
        return ApiError(
            400,
            f"Attribute {next(iter(attributes))} does not support the comment's language: it reads as {detected}. "
            "This server scores English (en); dropUnsupportedAttributes answers with no scores instead.",
        )
    return ApiError(400, f"The comment cannot be scored: {reason}.")  # empty texts were refused before scoring


def _attribute_scores(
    attributes: dict[str, tuple[Attribute, float]], summary: Result, spans: list[tuple[tuple[int, int], Result]]
) -> dict[str, AttributeScores]:
    """Each attribute whose summary reaches its threshold, with the spans that do (unscored sentences have none)."""
    found = {}
    for name, (attribute, threshold) in attributes.items():
        value = attribute.value(summary.scores or {}, summary.alliance)
        if value is None or value < threshold:
            continue
        span_scores = [
            SpanScore(begin=b, end=e, score=Score(value=v, type=attribute.score_type))
            for (b, e), r in spans
            if r.scores is not None and (v := attribute.value(r.scores, r.alliance)) is not None and v >= threshold
        ]
        found[name] = AttributeScores(
            summary_score=Score(value=value, type=attribute.score_type), span_scores=span_scores
        )
    return found
