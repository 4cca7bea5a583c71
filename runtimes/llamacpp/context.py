"""A prompt longer than the context: the one fit rule, and the policies that make one fit.

The fit rule (`prompt_limit`) is the only place that decides whether a prompt fits n_ctx; the
serial path and the batching engine both plan through generation.plan, which asks it.
- `error` (the default) keeps the rule llama-cpp-python has always had: a prompt fits while
  it leaves one position for the reply (prompt < n_ctx); the reply is then cut at the
  context's end (finish_reason "length"). A longer one is a 400 `context_length_exceeded`.
- `truncate_middle` and `rolling_window` make a prompt fit with room for its reply: the
  request's max_tokens, or REPLY_ROOM tokens (at most a quarter of the context) when it gives
  none; never more than half the context, so a max_tokens as large as the context still
  leaves half of it to the prompt.

How a prompt is cut (the caller measures and renders; this module decides):
- a completion (`cut_completion`): its own tokens (not the BOS or fill-in-the-middle tokens
  around them) keep their head and tail (truncate_middle) or only their tail (rolling_window);
- a chat by `rolling_window` (`fewest_turns`): the oldest whole turns (a user message and
  what follows it up to the next user message, so a call and its results go together) are
  dropped, never a system or developer message and never the last user turn, as Ollama's
  server/prompt.go and LM Studio's rolling window do; a chat with images is always cut so;
- a chat by `truncate_middle` (`middle_cut`): tokens from the middle of the rendered prompt,
  between the part it shares with the chat reduced to its system messages and last turn (its
  head: the system messages) and the part it ends with in common with it (the last turn).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from localoip.runtimes.capabilities import ChatMessage, InputError

POLICIES = ("error", "truncate_middle", "rolling_window")
REPLY_ROOM = 256  # tokens kept for the reply of a request that names no max_tokens
SYSTEM_ROLES = ("system", "developer")


def policy_of(overflow: str, truncation: str | None) -> str:
    """The policy one request runs with: the model's `context_overflow`, unless its
    `truncation` says otherwise ("disabled": error; "auto": the model's policy when it cuts,
    else rolling_window). InputError for another truncation."""
    if truncation is None:
        return overflow
    if truncation == "disabled":
        return "error"
    if truncation == "auto":
        return overflow if overflow != "error" else "rolling_window"
    raise InputError(f"truncation must be 'auto' or 'disabled', not {truncation!r}", "truncation")


def reply_room(n_ctx: int, max_tokens: int | None) -> int:
    """Positions a cut prompt leaves for its reply (see the module's docstring)."""
    given = max_tokens is not None and max_tokens >= 0
    room = max_tokens if given else min(REPLY_ROOM, n_ctx // 4)
    return max(1, min(room, n_ctx // 2))


def prompt_limit(n_ctx: int, max_tokens: int | None, policy: str) -> int:
    """The most prompt tokens that fit a context of n_ctx for a request of max_tokens
    (None or negative: none given) under `policy`."""
    if policy == "error":
        return n_ctx - 1
    return n_ctx - reply_room(n_ctx, max_tokens)


def too_long(tokens: int, n_ctx: int, param: str) -> InputError:
    """The 400 of a prompt that does not fit, under `error` (llama-cpp-python's words)."""
    return InputError(
        f"Requested tokens ({tokens}) exceed context window of {n_ctx}",
        param,
        "context_length_exceeded",
    )


def cannot_fit(least: int, limit: int, n_ctx: int, what: str, param: str) -> InputError:
    """The 400 of a prompt that no cut makes fit: `what` it keeps alone is `least` tokens."""
    return InputError(
        f"prompt is too long: {what} alone take {least} tokens, more than the {limit} "
        f"a context of {n_ctx} leaves for a prompt with room for the reply",
        param,
        "context_length_exceeded",
    )


def kept_ends(tokens: list[int], keep: int, tail_only: bool) -> list[int]:
    """`keep` of the tokens: the first half and the last (or, tail_only, the last)."""
    if keep <= 0:
        return []
    if tail_only:
        return tokens[-keep:]
    head = keep // 2
    return tokens[:head] + tokens[len(tokens) - (keep - head) :]


def cut_completion(tokens: list[int], own: slice, limit: int, policy: str, n_ctx: int) -> list[int]:
    """A completion's framed prompt `tokens` cut to `limit` within its own tokens (`own`),
    by `policy`. InputError when what frames them leaves no room for one of its own."""
    mine = tokens[own]
    keep = limit - (len(tokens) - len(mine))
    if keep < 1:
        raise cannot_fit(len(tokens) - len(mine) + 1, limit, n_ctx, "one token", "prompt")
    kept = kept_ends(mine, keep, policy == "rolling_window")
    return tokens[: own.start] + kept + tokens[own.stop :]


def turns(messages: list[ChatMessage]) -> list[list[int]]:
    """The indices of the messages a rolling window may drop, by turn, oldest first: each
    turn a user message and the messages after it up to the next one (messages before the
    first user message are a turn of their own). System and developer messages are in none,
    nor is the last user turn (from the last user message on)."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    end = users[-1] if users else len(messages) - 1
    groups: list[list[int]] = []
    for i, m in enumerate(messages[:end]):
        if m.role in SYSTEM_ROLES:
            continue
        if not groups or m.role == "user":
            groups.append([])
        groups[-1].append(i)
    return groups


def without_turns(messages: list[ChatMessage], k: int) -> list[ChatMessage]:
    """The messages with the oldest k droppable turns left out."""
    gone = {i for group in turns(messages)[:k] for i in group}
    return [m for i, m in enumerate(messages) if i not in gone]


def fewest_turns(
    messages: list[ChatMessage], measure: Callable[[list[ChatMessage]], int], limit: int
) -> int:
    """The fewest oldest turns whose dropping makes the chat fit: `measure` gives the prompt
    tokens of a list of messages. 0 when it fits as it is; -1 when even every droppable turn
    gone it does not (a binary search: a prompt never grows as turns go)."""
    n = len(turns(messages))
    if measure(messages) <= limit:
        return 0
    if n == 0 or measure(without_turns(messages, n)) > limit:
        return -1
    low, high = 1, n  # measure(low - 1) > limit, measure(high) <= limit
    while low < high:
        mid = (low + high) // 2
        if measure(without_turns(messages, mid)) <= limit:
            high = mid
        else:
            low = mid + 1
    return low


@dataclass(frozen=True, slots=True)
class Ends:
    """How many tokens a chat's prompt keeps whole at its start and at its end."""

    head: int
    tail: int


def kept_whole(full: list[int], least: list[int]) -> Ends:
    """The ends of a chat's prompt (`full`) that a middle cut keeps: what it shares with the
    prompt of the chat reduced to its system messages and last turn (`least`), from the start
    and from the end, never overlapping within `least`."""
    head = 0
    while head < min(len(full), len(least)) and full[head] == least[head]:
        head += 1
    tail = 0
    while tail < min(len(full), len(least)) - head and full[-1 - tail] == least[-1 - tail]:
        tail += 1
    return Ends(head, tail)


def middle_cut(full: list[int], ends: Ends, limit: int) -> list[int] | None:
    """`full` cut to `limit` tokens from between its kept ends (the first half of what
    remains and the last kept); None when the ends alone exceed the limit."""
    keep = limit - ends.head - ends.tail
    if keep < 0:
        return None
    middle = full[ends.head : len(full) - ends.tail]
    return full[: ends.head] + kept_ends(middle, keep, False) + full[len(full) - ends.tail :]
