"""The tensors of a scripted GGUF (see scripted.py): one layer whose attention finds the state
and whose FFN looks up (current token, state) -> next token.

The residual stream has one dimension for a constant (BIAS), one per token the network must
tell apart (every script token and cue; all others share OTHER), one per state, and one per
token the FFN may write. Every embedding has the same norm, so RMSNorm scales every position
alike, and a unit's gate reads "this token and this state" as a sum that clears a threshold
only when both are there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from support.gguf_parts import Shape

if TYPE_CHECKING:
    import numpy as np

    from support.scripted_plan import Plan

HEAD_DIM = 32
ROPE_BASE = 1e10  # the lowest-frequency pair turns about 4e-10 rad a position: none
GATE = 40.0  # a unit's gate is +GATE/2 when its key holds, -GATE/2 or less when not
WINNER = 42.0  # about the logit of the token a key writes
EOS_BIAS = 8.0  # about the end-of-generation logit where a key fires (more where none does)


def scripted_tensors(plan: Plan, n_ctx: int) -> tuple[Shape, dict[str, np.ndarray]]:
    """The model's shape and F32 tensors, named as llama.cpp names a llama's."""
    import numpy as np

    n_vocab = len(plan.vocab.tokens)
    keyed = sorted({t for seq in plan.turns for t in seq} | set(plan.state_of))
    targets = sorted({t for seq in plan.turns for t in seq})
    bias, other = 0, 1
    id_dim = {t: 2 + i for i, t in enumerate(keyed)}
    state_dim = {s: 2 + len(keyed) + s for s in range(plan.n_states)}
    out_dim = {t: 2 + len(keyed) + plan.n_states + i for i, t in enumerate(targets)}
    used = 2 + len(keyed) + plan.n_states + len(targets)
    n_embd = max(2, -(-used // HEAD_DIM)) * HEAD_DIM
    n_head = n_embd // HEAD_DIM
    units = [(key, nxt) for key, nxt in plan.keys.items()]
    starts = [(plan.starts[j], seq[0]) for j, seq in enumerate(plan.turns)]
    n_ff = len(units) + len(starts)

    f32 = np.float32
    embd = np.zeros((n_vocab, n_embd), f32)
    embd[:, bias] = 1.0
    embd[:, other] = 1.0
    for t, d in id_dim.items():
        embd[t, other] = 0.0
        embd[t, d] = 1.0
    # After attn_norm every position holds BIAS and one token dimension at h0.
    h0 = np.sqrt(n_embd / 2.0)

    # Attention: every head alike. q is constant; k is the token's score; both sit in the
    # lowest-frequency RoPE pair (the head's last two dimensions). v is the token's state.
    wq = np.zeros((n_embd, n_embd), f32)
    wk = np.zeros((n_embd, n_embd), f32)
    wv = np.zeros((n_embd, n_embd), f32)
    for h in range(n_head):
        pair = h * HEAD_DIM + HEAD_DIM - 2
        wq[pair, bias] = np.sqrt(HEAD_DIM) / h0  # llama.cpp scales q.k by 1/sqrt(head_dim)
        for t, score in plan.score.items():
            wk[pair, id_dim[t]] = score / h0
    for t, d in id_dim.items():
        wv[plan.state_of.get(t, 0), d] = 1.0 / h0
    wv[0, other] = 1.0 / h0  # prompt text: the first turn's start state
    wo = np.zeros((n_embd, n_embd), f32)
    for s, d in state_dim.items():
        wo[d, s] = 1.0

    # FFN: after ffn_norm the position holds BIAS, its token and its state, each at h1.
    h1 = np.sqrt(n_embd / 3.0)
    act = GATE / 2.0 / (1.0 + np.exp(-GATE / 2.0))  # silu(GATE/2): a firing unit's output
    gate = np.zeros((n_ff, n_embd), f32)
    up = np.zeros((n_ff, n_embd), f32)
    down = np.zeros((n_embd, n_ff), f32)
    up[:, bias] = 1.0 / h1
    for u, ((tok, state), nxt) in enumerate(units):
        gate[u, id_dim[tok]] = GATE / h1
        gate[u, state_dim[state]] = GATE / h1
        gate[u, bias] = -1.5 * GATE / h1
        down[out_dim[nxt], u] = 2.0 / act
    for u, (state, first) in enumerate(starts, start=len(units)):
        gate[u, state_dim[state]] = GATE / h1
        gate[u, bias] = -0.5 * GATE / h1
        down[out_dim[first], u] = 1.0 / act  # half a key's weight: a key in the state wins

    # Output: a firing key leaves BIAS, token and state at 1 and its target at 2 (and a start
    # unit's at 1): RMS about sqrt(8 / n_embd).
    rms = np.sqrt(8.0 / n_embd)
    out = np.zeros((n_vocab, n_embd), f32)
    for t, d in out_dim.items():
        out[t, d] = WINNER * rms / 2.0
    out[plan.vocab.eos, bias] = EOS_BIAS * rms

    ones = np.ones(n_embd, f32)
    tensors = {
        "token_embd.weight": embd,
        "output_norm.weight": ones,
        "output.weight": out,
        "blk.0.attn_norm.weight": ones,
        "blk.0.attn_q.weight": wq,
        "blk.0.attn_k.weight": wk,
        "blk.0.attn_v.weight": wv,
        "blk.0.attn_output.weight": wo,
        "blk.0.ffn_norm.weight": ones,
        "blk.0.ffn_gate.weight": gate,
        "blk.0.ffn_up.weight": up,
        "blk.0.ffn_down.weight": down,
    }
    shape = Shape(n_embd, n_ff, 1, n_head, n_ctx, ROPE_BASE)
    return shape, tensors
