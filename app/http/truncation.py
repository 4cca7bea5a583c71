"""A prompt cut to fit its model's context (runtimes/llamacpp/context.py), told in response
headers, the same for every protocol: `x-localoip-truncated` (the prompt tokens dropped) and
`x-localoip-context-overflow` (the policy that dropped them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from localoip.runtimes.capabilities import TextDelta, Truncated

DROPPED = "x-localoip-truncated"
POLICY = "x-localoip-context-overflow"


def truncation_headers(truncated: Truncated | None) -> dict[str, str]:
    """The headers of a reply whose prompt was cut; none when it was not."""
    if truncated is None:
        return {}
    return {DROPPED: str(truncated.dropped), POLICY: truncated.policy}


class Watch:
    """What a stream's deltas say of the prompt's truncation as they pass: the first delta
    says it, so once a stream is primed (app/http/sse.primed) its headers are known."""

    def __init__(self) -> None:
        self.truncated: Truncated | None = None

    async def watched(self, deltas: AsyncIterator[TextDelta]) -> AsyncIterator[TextDelta]:
        """The deltas as they come; closing this closes them."""
        async with aclosing(deltas):
            async for delta in deltas:
                self.truncated = self.truncated or delta.truncated
                yield delta

    @property
    def headers(self) -> dict[str, str]:
        return truncation_headers(self.truncated)
