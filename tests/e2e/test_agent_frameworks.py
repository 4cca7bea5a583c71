"""The agent frameworks issue 13 names, unchanged, against the local server: their tool calls
stream in pieces and parse with their own (strict) parsers.

openai-agents runs on the Responses API; langchain-openai on chat completions and on the
Responses API. Every client points at the test server; tracing, which would post to the
internet, is off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI
from pydantic import BaseModel, ConfigDict, Field
from support.configs import tiny_chat
from support.servers import Server, Servers

CITY_LIMIT = 12


class Weather(BaseModel):
    """Current weather in a city."""

    model_config = ConfigDict(extra="forbid")
    city: str = Field(max_length=CITY_LIMIT)
    unit: Literal["C", "F"]


@pytest.fixture(scope="module")
def server(servers: Servers, tiny_dir: Path) -> Iterator[Server]:
    with servers.shared(tiny_chat(tiny_dir, n_ctx=2048)) as running:
        yield running


@pytest.fixture(autouse=True)
def no_tracing() -> None:
    set_tracing_disabled(True)


def test_an_openai_agents_run_streams_its_tool_call_and_runs_the_tool(server):
    seen: list[Weather] = []

    @function_tool
    def get_weather(
        city: Annotated[str, Field(max_length=CITY_LIMIT)], unit: Literal["C", "F"]
    ) -> str:
        """Current weather in a city."""
        seen.append(Weather(city=city, unit=unit))
        return "12 degrees and sunny"

    client = AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
    agent = Agent(
        name="weather",
        instructions="Answer with the weather.",
        model=OpenAIResponsesModel(model="tiny-chat", openai_client=client),
        model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=120),
        tools=[get_weather],
        tool_use_behavior="stop_on_first_tool",  # the tool's output is the final output
    )

    async def run() -> tuple[list[str], object]:
        result = Runner.run_streamed(agent, "Weather in Oslo?", max_turns=3)
        kinds = [
            e.data.type async for e in result.stream_events() if e.type == "raw_response_event"
        ]
        return kinds, result

    kinds, result = asyncio.run(run())
    # The one turn calls the tool, its arguments in pieces, and its output ends the run.
    assert kinds.count("response.function_call_arguments.delta") > 3
    assert kinds.count("response.function_call_arguments.done") == 1
    assert len(seen) == 1
    calls = [i for i in result.new_items if i.type == "tool_call_item"]
    outputs = [i for i in result.new_items if i.type == "tool_call_output_item"]
    assert len(calls) == 1 and outputs[0].output == "12 degrees and sunny"
    assert result.final_output == "12 degrees and sunny"


@pytest.mark.parametrize("responses_api", [False, True], ids=["chat", "responses"])
def test_langchain_streams_a_forced_tool_call_in_pieces_that_parse(server, responses_api):
    model = ChatOpenAI(
        model="tiny-chat",
        base_url=f"{server.url}/v1",
        api_key="x",
        max_retries=0,
        temperature=0,
        max_tokens=120,
        use_responses_api=responses_api,
    )
    bound = model.bind_tools([Weather], tool_choice="Weather", strict=True)
    chunks = list(bound.stream("Weather in Oslo?"))
    pieces = [c for chunk in chunks for c in chunk.tool_call_chunks if c.get("args")]
    assert len(pieces) > 3  # not one chunk at the end
    whole = sum(chunks[1:], chunks[0])
    assert isinstance(whole, AIMessageChunk)
    (call,) = whole.tool_calls
    assert call["name"] == "Weather"
    Weather.model_validate(call["args"], strict=True)
    assert not whole.invalid_tool_calls
