"""openai-agents, unchanged, against each calling family's scripted tool loop
(support.scripted.build_tool_turns), in process: the agent's get_weather runs with the
arguments the family wrote, in the family's own call format, and the answer the model gives
once the tool said "sunny" is the run's final output.

Every family runs through agents' Chat Completions model with its default settings (no
parallel_tool_calls sent), whole and streamed; three run through its Responses model too,
with parallel_tool_calls=false. Tracing, which would post to the internet, is off."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest
from agents import (
    Agent,
    Model,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.result import RunResultBase
from support.families import FAMILIES
from support.family import ANSWER, ARGUMENTS, Family
from support.inprocess import InProcessApp

CALLING = [f for f in FAMILIES.values() if f.calling]
# The Responses API too for a Hermes call after reasoning, harmony and Mistral's [TOOL_CALLS].
RESPONSES = [FAMILIES[name] for name in ("qwen3", "gpt-oss", "mistral-reasoning")]
ASK = "What is the weather in Paris?"


@pytest.fixture(autouse=True)
def no_tracing() -> None:
    set_tracing_disabled(True)


def run_agent(
    app: InProcessApp, family: Family, responses: bool, stream: bool
) -> tuple[list, RunResultBase]:
    """The weather agent's run on the family's tool loop, streamed or not: the tool's calls,
    and the result. A run on the Responses model sends parallel_tool_calls=false."""
    seen: list[tuple[str, str]] = []

    @function_tool
    def get_weather(city: str, unit: Literal["C", "F"]) -> str:
        """Current weather in a city."""
        seen.append((city, unit))
        return "sunny"

    client = app.async_openai()
    name = f"{family.name}-turns"
    model: Model = (
        OpenAIResponsesModel(model=name, openai_client=client)
        if responses
        else OpenAIChatCompletionsModel(model=name, openai_client=client)
    )
    agent = Agent(
        name="weather",
        instructions="Answer with the weather.",
        model=model,
        model_settings=ModelSettings(
            temperature=0, parallel_tool_calls=False if responses else None
        ),
        tools=[get_weather],
    )

    async def run() -> RunResultBase:
        if not stream:
            return await Runner.run(agent, ASK, max_turns=3)
        result = Runner.run_streamed(agent, ASK, max_turns=3)
        async for _ in result.stream_events():
            pass
        return result

    return seen, asyncio.run(run())


# The runs on one model come one after the other: models load on demand, a few at a time.
RUNS = [
    (f, api, way)
    for f in CALLING
    for api in ("chat", "responses")
    for way in ("whole", "streamed")
    if api == "chat" or f in RESPONSES
]


@pytest.mark.parametrize(
    ("family", "api", "way"), RUNS, ids=[f"{f.name}-{api}-{way}" for f, api, way in RUNS]
)
def test_an_agent_runs_the_familys_call_then_answers(scripted_app, family, api, way):
    seen, result = run_agent(scripted_app, family, api == "responses", way == "streamed")
    arguments = json.loads(ARGUMENTS)
    assert seen == [(arguments["city"], arguments["unit"])]
    calls = [i.raw_item for i in result.new_items if i.type == "tool_call_item"]
    outputs = [i.output for i in result.new_items if i.type == "tool_call_output_item"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", arguments)]
    assert (outputs, result.final_output) == (["sunny"], ANSWER)
