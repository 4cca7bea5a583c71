"""The tensors of a scripted GGUF (see scripted.py): one layer whose attention finds the state
and the previous token, and whose FFN looks up ([previous token,] current token, state) ->
next token.

The residual stream has one dimension for a constant (BIAS), one per token the network must
tell apart (every script token and cue; all others share OTHER), one per state, one per
previous token a key names (all others share PREV_OTHER), and one per token the FFN may
write. Every position holds BIAS, one token, one state and one previous token at 1, so RMSNorm
scales every position alike, and a unit's gate reads "this token and this state" as a sum
that clears a threshold only when all its parts are there.

State heads: q is constant, k is the token's score; both sit in the head's lowest-frequency
RoPE pair, which a huge rope.freq_base keeps from turning, so the latest score wins wherever
it is. Previous-token heads: q and k sit in the eight fastest pairs, q turned back one
position, so the position just before scores highest (by at least 0.49 of a pair's weight
anywhere within 8192 positions: measured over every distance).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from support.gguf_parts import Shape

if TYPE_CHECKING:
    import numpy as np

    from support.scripted_plan import Plan

HEAD_DIM = 32
ROPE_BASE = 1e10  # pair i turns 1e10 ** (-i / 16) rad a position: pair 15 about 4e-10
PREV_PAIRS = 8
PREV_WEIGHT = 64.0  # per pair: the previous position leads any other by 0.49 * 64 = 31
GATE = 40.0  # a unit's gate is +GATE/2 when its key holds, -GATE/2 or less when not
WINNER = 42.0  # about the logit of the token a key writes
EOS_BIAS = 8.0  # about the end-of-generation logit where a key fires (more where none does)
HELD = 4  # dimensions at 1 on every position after attention: BIAS, token, state, previous


class Layout:
    """Where each thing sits in the residual stream, and the model's width and heads."""

    def __init__(self, plan: Plan) -> None:
        keyed = sorted({t for seq in plan.turns for t in seq} | set(plan.state_of))
        prevs = sorted({prev for prev, _, _ in plan.keys if prev is not None})
        targets = sorted({t for seq in plan.turns for t in seq})
        self.bias, self.other, self.prev_other = 0, 1, 2
        at = 3
        self.token = {t: at + i for i, t in enumerate(keyed)}
        at += len(keyed)
        self.state = {s: at + s for s in range(plan.n_states)}
        at += plan.n_states
        self.prev = {t: at + i for i, t in enumerate(prevs)}
        at += len(prevs)
        self.out = {t: at + i for i, t in enumerate(targets)}
        at += len(targets)
        self.state_heads = -(-plan.n_states // HEAD_DIM)
        self.prev_heads = -(-(1 + len(prevs)) // HEAD_DIM)
        working = self.state_heads + self.prev_heads
        self.n_embd = max(-(-at // HEAD_DIM), working) * HEAD_DIM
        # llama.cpp's heads are n_embd / n_head wide: HEAD_DIM wide, every head past the
        # working ones idle (all zero). Fewer, wider heads would merge a state head with a
        # previous-token head, or leave n_embd undivided (a file llama.cpp will not load).
        self.n_head = self.n_embd // HEAD_DIM


def _attention(plan: Plan, lay: Layout) -> dict[str, np.ndarray]:
    import numpy as np

    n = lay.n_embd
    h0 = np.sqrt(n / 2.0)  # after attn_norm: BIAS and the token's dimension at h0
    wq, wk, wv, wo = (np.zeros((n, n), np.float32) for _ in range(4))
    # State heads: their values, side by side, are the state one-hot.
    for h in range(lay.state_heads):
        pair = h * HEAD_DIM + HEAD_DIM - 2
        wq[pair, lay.bias] = np.sqrt(HEAD_DIM) / h0  # llama.cpp scales q.k by 1/sqrt(head_dim)
        for t, score in plan.score.items():
            wk[pair, lay.token[t]] = score / h0
    for s, dim in lay.state.items():
        wo[dim, s] = 1.0
    for t, d in lay.token.items():
        wv[plan.state_of.get(t, 0), d] = 1.0 / h0
    wv[0, lay.other] = 1.0 / h0  # prompt text: the first turn's start state
    # Previous-token heads, after them: their values are the token's slot (0: any other).
    first = lay.state_heads * HEAD_DIM
    amp = PREV_WEIGHT * np.sqrt(HEAD_DIM) / h0
    for h in range(lay.state_heads, lay.state_heads + lay.prev_heads):
        for i in range(PREV_PAIRS):
            theta = ROPE_BASE ** (-i / (HEAD_DIM / 2))
            wq[h * HEAD_DIM + 2 * i, lay.bias] = amp * np.cos(theta)
            wq[h * HEAD_DIM + 2 * i + 1, lay.bias] = -amp * np.sin(theta)
            wk[h * HEAD_DIM + 2 * i, lay.bias] = 1.0 / h0
    slot = {t: 1 + i for i, t in enumerate(lay.prev)}
    for t, d in lay.token.items():
        wv[first + slot.get(t, 0), d] = 1.0 / h0
    wv[first, lay.other] = 1.0 / h0
    for t, i in slot.items():
        wo[lay.prev[t], first + i] = 1.0
    wo[lay.prev_other, first] = 1.0
    return {
        "blk.0.attn_q.weight": wq,
        "blk.0.attn_k.weight": wk,
        "blk.0.attn_v.weight": wv,
        "blk.0.attn_output.weight": wo,
    }


def _ffn(plan: Plan, lay: Layout) -> dict[str, np.ndarray]:
    import numpy as np

    n = lay.n_embd
    starts = [(plan.starts[j], seq[0]) for j, seq in enumerate(plan.turns)]
    n_ff = len(plan.keys) + len(starts)
    h1 = np.sqrt(n / HELD)  # after ffn_norm: each held dimension at h1
    act = GATE / 2.0 / (1.0 + np.exp(-GATE / 2.0))  # silu(GATE/2): a firing unit's output
    gate, up = np.zeros((n_ff, n), np.float32), np.zeros((n_ff, n), np.float32)
    down = np.zeros((n, n_ff), np.float32)
    up[:, lay.bias] = 1.0 / h1
    for u, ((prev, tok, state), nxt) in enumerate(plan.keys.items()):
        parts = [lay.token[tok], lay.state[state]] + ([lay.prev[prev]] if prev is not None else [])
        gate[u, parts] = GATE / h1
        gate[u, lay.bias] = -(len(parts) - 0.5) * GATE / h1
        down[lay.out[nxt], u] = 2.0 / act
    for u, (state, first) in enumerate(starts, start=len(plan.keys)):
        gate[u, lay.state[state]] = GATE / h1
        gate[u, lay.bias] = -0.5 * GATE / h1
        down[lay.out[first], u] = 1.0 / act  # half a key's weight: a key in the state wins
    return {"blk.0.ffn_gate.weight": gate, "blk.0.ffn_up.weight": up, "blk.0.ffn_down.weight": down}


def scripted_tensors(plan: Plan, n_ctx: int) -> tuple[Shape, dict[str, np.ndarray]]:
    """The model's shape and F32 tensors, named as llama.cpp names a llama's."""
    import numpy as np

    lay = Layout(plan)
    n, n_vocab = lay.n_embd, len(plan.vocab.tokens)
    embd = np.zeros((n_vocab, n), np.float32)
    embd[:, lay.bias] = 1.0
    embd[:, lay.other] = 1.0
    for t, d in lay.token.items():
        embd[t, lay.other] = 0.0
        embd[t, d] = 1.0
    # Output: a firing key leaves the held dimensions at 1 and its target at 2 (and a start
    # unit's at 1): RMS about sqrt((HELD + 5) / n).
    rms = np.sqrt((HELD + 5.0) / n)
    out = np.zeros((n_vocab, n), np.float32)
    for t, d in lay.out.items():
        out[t, d] = WINNER * rms / 2.0
    out[plan.vocab.eos, lay.bias] = EOS_BIAS * rms
    ones = np.ones(n, np.float32)
    tensors = {
        "token_embd.weight": embd,
        "output_norm.weight": ones,
        "output.weight": out,
        "blk.0.attn_norm.weight": ones,
        **_attention(plan, lay),
        "blk.0.ffn_norm.weight": ones,
        **_ffn(plan, lay),
    }
    n_ff = tensors["blk.0.ffn_gate.weight"].shape[0]
    return Shape(n, n_ff, 1, lay.n_head, n_ctx, ROPE_BASE), tensors
