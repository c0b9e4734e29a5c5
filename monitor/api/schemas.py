"""What the API accepts and returns, field for field: Perspective's comments:analyze and civmon's /v1/score.

Perspective's names are camelCase on the wire (aliases); unknown fields are refused, as Perspective refuses
them, so a misspelt `requestedAttribute` is a clear 400 rather than a silently ignored option. Strings and
booleans are strict: `"doNotStore": "false"` would otherwise read as true.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator
from pydantic.alias_generators import to_camel

Token = Annotated[StrictStr, Field(max_length=256)]  # the caller's opaque ids: stored or echoed, so bounded
ScoreType = Literal["PROBABILITY", "STD_DEV_SCORE", "PERCENTILE", "RAW"]
TextType = Literal["TEXT_TYPE_UNSPECIFIED", "PLAIN_TEXT", "HTML"]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", allow_inf_nan=False)


class TextEntry(_Wire):
    text: StrictStr | None = None
    type: TextType | None = None


class ArticleAndParentComment(_Wire):
    article: TextEntry | None = None
    parent_comment: TextEntry | None = None


class Context(_Wire):
    """Accepted and ignored, as Perspective did: the model scores the comment on its own."""

    entries: list[TextEntry] | None = None
    article_and_parent_comment: ArticleAndParentComment | None = None


class AttributeParameters(_Wire):
    score_type: ScoreType | None = None
    score_threshold: Annotated[float, Field(ge=0, le=1)] | None = None


class AnalyzeCommentRequest(_Wire):
    comment: TextEntry
    context: Context | None = None
    requested_attributes: dict[StrictStr, AttributeParameters]
    span_annotations: StrictBool | None = None
    languages: list[StrictStr] | None = None
    do_not_store: StrictBool | None = None
    client_token: Token | None = None
    session_id: Token | None = None
    community_id: Token | None = None
    # Perspective's own switch: leave out requested attributes the model lacks instead of refusing the request
    drop_unsupported_attributes: StrictBool | None = None

    @field_validator("community_id", "session_id")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        """Perspective's messages are proto3, where an empty string is the field's default, so a client sends ""
        for an id it does not set: such a comment is not stored (no communityId) or not in a session."""
        return value or None


class Score(_Wire):
    value: float
    type: ScoreType


class SpanScore(_Wire):
    begin: int  # offsets in Unicode code points (Python's str indices) into comment.text, end exclusive
    end: int
    score: Score


class AttributeScores(_Wire):
    summary_score: Score
    span_scores: list[SpanScore] = []


class AnalyzeCommentResponse(_Wire):
    attribute_scores: dict[str, AttributeScores]
    languages: list[str]
    detected_languages: list[str]
    client_token: str | None = None


class ErrorBody(_Wire):
    code: int
    message: str
    status: str


class ErrorResponse(_Wire):
    error: ErrorBody


class ScoreRequest(_Wire):
    """civmon's own batch call: many texts scored in one request."""

    texts: Annotated[list[StrictStr | None], Field(min_length=1)]


class ScoredText(BaseModel):
    """One text's result, with the fields `civmon score --input` writes (plus the model's dimensions)."""

    model_config = ConfigDict(extra="allow")  # one key per dimension of the configured model

    row: int
    alliance: float | None
    language: str | None
    model_version: str
    reason: str | None


class ScoreResponse(BaseModel):
    model_version: str
    dimensions: list[str]
    results: list[ScoredText]
