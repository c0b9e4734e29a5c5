"""The status of a response as it goes out, for the middlewares that act on it (metrics, access log, errors)."""

from __future__ import annotations

from starlette.types import Message, Send


class WatchedSend:
    """`send`, noting the status of the response it starts (None until then)."""

    def __init__(self, send: Send) -> None:
        self.status: int | None = None
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)
