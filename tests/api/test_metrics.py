"""GET /metrics: Prometheus text that prometheus-client parses, and that changes with traffic."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(http: httpx.Client) -> dict[tuple[str, tuple], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_tokens_and_time_to_first_token(http, app):
    before = scrape(http)
    client = app.openai("/v1", api_key="x")
    client.chat.completions.create(
        model="tiny-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )
    stream = client.chat.completions.create(
        model="tiny-chat",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=5,
        stream=True,
    )
    assert [chunk for chunk in stream]
    client.embeddings.create(model="minilm", input=["one", "two"])
    missing = http.post("/v1/embeddings", json={"model": "nope", "input": "x"})
    assert missing.status_code == 404
    after = scrape(http)

    chat = {"route": "/v1/chat/completions", "model": "tiny-chat", "status": "200"}
    assert (
        value(after, "localoip_requests_total", **chat)
        - value(before, "localoip_requests_total", **chat)
        == 2
    )
    assert value(after, "localoip_request_duration_seconds_count", **chat) >= 2
    lost = {"route": "/v1/embeddings", "model": "nope", "status": "404"}
    assert value(after, "localoip_requests_total", **lost) >= 1
    for name in ("localoip_prompt_tokens_total", "localoip_generation_tokens_total"):
        assert value(after, name, model="tiny-chat") > value(before, name, model="tiny-chat")
    assert value(after, "localoip_prompt_tokens_total", model="minilm") > value(
        before, "localoip_prompt_tokens_total", model="minilm"
    )
    assert value(after, "localoip_time_to_first_token_seconds_count", model="tiny-chat") > value(
        before, "localoip_time_to_first_token_seconds_count", model="tiny-chat"
    )


def test_metrics_report_queues_load_times_and_states(http):
    samples = scrape(http)
    assert value(samples, "localoip_queue_depth", model="tiny-chat") == 0
    assert value(samples, "localoip_requests_running", model="tiny-chat") == 0
    assert value(samples, "localoip_model_load_seconds", model="tiny-chat") > 0
    assert value(samples, "localoip_model_state", model="tiny-chat", state="READY") == 1
    assert value(samples, "localoip_model_state", model="missing", state="UNAVAILABLE") == 1
    assert value(samples, "localoip_model_state", model="missing", state="READY") == 0
