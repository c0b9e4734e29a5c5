"""civmon's own calls: POST /v1/score (many texts at once, each result as `civmon score --input` writes it)
and GET /healthz."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from monitor.api.auth import ServiceDep, authenticated, charge
from monitor.api.errors import DOCUMENTED, ApiError
from monitor.api.schemas import ScoredText, ScoreRequest, ScoreResponse
from monitor.api.service import Service
from monitor.scoring.files import Row, output_record
from monitor.store.keys import KeyInfo

router = APIRouter(tags=["civmon"])


@router.post(
    "/v1/score",
    response_model=ScoreResponse,
    responses=DOCUMENTED,
    summary="Score many texts in one call; unscorable ones carry a reason",
)
async def score(
    body: ScoreRequest, state: ServiceDep, key: Annotated[KeyInfo | None, Depends(authenticated)]
) -> ScoreResponse:
    api = state.settings.api
    if len(body.texts) > api.max_texts_per_request:
        raise ApiError(400, f"texts: {len(body.texts):,} in one request, at most {api.max_texts_per_request:,}.")
    await charge(state, key, len(body.texts))
    rows = [_row(text, state) for text in body.texts]
    scorable = [r.text or "" for r in rows if r.problem is None]
    results = iter(await state.score(scorable) if scorable else [])
    records = [
        output_record(n, row, None if row.problem else next(results), state.scorer) for n, row in enumerate(rows, 1)
    ]
    return ScoreResponse(
        model_version=state.scorer.version,
        dimensions=list(state.scorer.dimensions),
        results=[ScoredText(**r) for r in records],
    )


def _row(text: str | None, state: Service) -> Row:
    if text is not None and (size := state.oversize(text)):
        return Row(
            None, f"too long for the API ({size:,} bytes of UTF-8; at most {state.settings.api.max_text_bytes:,})"
        )
    return Row(text)


@router.get("/healthz", summary="Whether the server is up, and which model it serves")
async def healthz(state: ServiceDep) -> dict[str, object]:
    return {"status": "ok", "model_version": state.scorer.version, "attributes": list(state.attributes)}
