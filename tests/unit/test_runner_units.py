"""The runner boundary's pure parts: frames and typed methods, crash words, restart backoff."""

from __future__ import annotations

import signal
import socket

import msgspec
import numpy as np
import pytest
from localoip.app.core.runners.crash import CRASH_LIMIT, CrashHistory, advice, cause, describe
from localoip.app.core.runners.wire import (
    METHODS,
    PROTOCOL_METHODS,
    Call,
    Cancel,
    Connection,
    Done,
    Failed,
    encode,
)
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    Embeddings,
    GeneratedImage,
    ImageRequest,
    Sampling,
    TextDelta,
    TextResult,
    TokenLogprob,
    Tool,
    ToolCall,
)


def test_every_capability_method_crosses_with_types_read_from_its_protocol():
    assert set(METHODS) == {m for names in PROTOCOL_METHODS.values() for m in names}
    assert METHODS["chat_stream"].item is not None and METHODS["chat"].item is None
    assert METHODS["generate_images"].callback and METHODS["generate_images"].arity == 1
    assert METHODS["tokenize"].arity == 2


def test_requests_and_results_cross_whole_nested_dataclasses_included():
    request = ChatRequest(
        [
            ChatMessage("user", "hi"),
            ChatMessage("assistant", None, tool_calls=(ToolCall("c1", "f", "{}"),)),
        ],
        Sampling(max_tokens=3, stop=("x",), logit_bias={5: -1.0}),
        tools=(Tool("f", "does f", {"type": "object"}),),
        json_schema={},
        logprobs=2,
    )
    assert METHODS["chat"].args.decode(encode((request,))) == (request,)
    result = TextResult(
        "t", "stop", 1, 2, logprobs=(TokenLogprob("a", -0.5, (("a", -0.5), ("b", -1.0))),)
    )
    assert METHODS["chat"].result.decode(encode(result)) == result
    delta = TextDelta("x", "length", usage=(3, 4))
    assert METHODS["chat_stream"].item.decode(encode(delta)) == delta


def test_vectors_and_images_cross_as_bytes():
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    back = METHODS["embed"].result.decode(encode(Embeddings(vectors, (1, 2))))
    assert back.tokens == (1, 2) and back.vectors.dtype == np.float32
    np.testing.assert_array_equal(back.vectors, vectors)
    images = [GeneratedImage(b"\x89PNG", 7)]
    assert METHODS["generate_images"].result.decode(encode(images)) == images
    assert METHODS["generate_images"].args.decode(encode((ImageRequest("a"),))) == (
        ImageRequest("a"),
    )
    assert METHODS["generate_images"].item.decode(encode((1, 2))) == (1, 2)


def test_a_request_with_a_wrong_shape_is_refused_by_the_decoder():
    with pytest.raises(msgspec.ValidationError):
        METHODS["embed"].args.decode(encode(([1, 2],)))


def test_frames_cross_a_socket_in_order_and_the_end_reads_as_none():
    left, right = socket.socketpair()
    a, b = Connection(left), Connection(right)
    sent = [
        Call(1, "embed", encode((["x"],))),
        Cancel(1),
        Done(1, encode(None)),
        Failed(2, "e", "m"),
    ]
    for frame in sent:
        a.send(frame)
    assert [b.receive() for _ in sent] == sent
    a.close()
    assert b.receive() is None
    b.close()


def test_a_crash_is_described_by_its_signal_its_meaning_and_the_last_lines():
    words = describe(-signal.SIGILL, ["loading\n", "", "tilezero in libggml-cpu.so\n"])
    assert words.startswith("killed by SIGILL (illegal instruction")
    assert words.endswith("last output: loading | tilezero in libggml-cpu.so")
    assert describe(3, []) == "exited with code 3"
    assert describe(-9, [], "while loading").startswith("killed by SIGKILL (killed:")
    assert describe(-9, [], "while loading").endswith("kill -9) while loading")
    assert cause(-signal.SIGSEGV) == "SIGSEGV" and cause(1) == "exit 1"


def test_only_sigill_advises_rebuilding_llama_cpp_python():
    assert "runtimes/llamacpp/build.py --force" in advice(-signal.SIGILL)
    assert advice(-signal.SIGKILL) is None and advice(1) is None


def test_restarts_back_off_and_stop_after_five_crashes_in_ten_minutes():
    history = CrashHistory()
    delays = [history.crashed(-9, "killed", now=float(t)) for t in range(CRASH_LIMIT)]
    assert delays == [1.0, 2.0, 4.0, 8.0, None]
    history.forgive()
    assert history.crashed(-9, "killed", now=10.0) == 1.0


def test_restart_delay_sets_the_first_wait_and_the_doubling_keeps_its_cap():
    history = CrashHistory(0.25)
    delays = [history.crashed(-11, "segfault", now=700.0 * t) for t in range(11)]
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0]
    assert delays[-2:] == [60.0, 60.0]


def test_crashes_further_apart_than_ten_minutes_never_stop_the_restarts():
    history = CrashHistory()
    delays = [history.crashed(-11, "segfault", now=700.0 * t) for t in range(9)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert history.last == "segfault" and history.last_cause == "SIGSEGV"


@pytest.mark.parametrize(
    ("method", "arity"), [("chat_batched", 1), ("complete_batched", 1), ("generate_images", 1)]
)
def test_callbacks_stay_on_their_side_of_the_boundary(method, arity):
    """emit and on_step are Callables (emit's type names a forward reference): never sent."""
    from localoip.app.core.runners.wire import METHODS

    assert (METHODS[method].callback, METHODS[method].arity) == (True, arity)
