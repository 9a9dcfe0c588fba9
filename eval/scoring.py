"""Log-likelihoods of continuations given contexts: the one scoring routine every RC task uses.

A request is a (context, continuation) pair; the requests of one example form a group. The tokens
a group's sequences share at their start (the context, few-shot examples included) run through the
model once and their key/value cache serves every continuation (shared prefix). Groups are sorted
longest first and batched; the tokens a whole batch shares (the same k-shot demonstrations) run once
as a single row before the rest of each prefix. Padding goes on the right, with the attention mask and explicit position
ids, so every score equals scoring that request alone (tests/eval/test_eval_scoring.py checks 1e-5).

Tokenization follows lm-eval and OLMo: context and continuation are tokenized separately and
concatenated, the continuation carrying its leading space; spaces at the end of a context move to
the continuation, so the boundary never falls inside a word's token. No special tokens are added;
an empty context is replaced by the EOS token so the first continuation token has a prediction.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from transformers import DynamicCache

from ladder.core.interrupt import raise_if_stopped


MIN_BATCH_PREFIX = 16  # tokens; a batch-wide prefix shorter than this runs with each row's own


@dataclass
class GroupScores:
    logprobs: list[float]  # per request: sum of the continuation tokens' log-probabilities (nats)
    n_tokens: list[int]  # per request: continuation tokens scored
    truncated: bool  # contexts were cut from the left to fit the model's sequence length


@dataclass
class _Unit:
    """One forward unit: a prefix run once, then each rest run on its cache."""
    group: int
    requests: list[int]  # indices into the group's requests
    prefix: list[int]
    rests: list[list[int]]
    cont_lens: list[int]


def pad_id(tokenizer) -> int:
    """The padding id: the tokenizer's, else EOS (every position it fills is masked out)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)


def pad_right(seqs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of shape (len(seqs), longest), padded on the right."""
    ids = torch.full((len(seqs), max(len(s) for s in seqs)), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.as_tensor(np.asarray(s, dtype=np.int64))
        mask[i, :len(s)] = 1
    return ids, mask


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False) if text else []


def encode_group(tokenizer, pairs: Sequence[tuple[str, str]], max_len: int) -> tuple[list[list[int]], list[int], bool]:
    """Token sequences (context + continuation) and continuation lengths of one group.

    A sequence's last token is never fed to the model, so `max_len + 1` tokens fit the window, as in
    lm-eval. Longer groups lose the same number of tokens from the left of every context, so a shared
    prefix stays shared (docs/eval.md, "Too-long contexts"); a continuation that cannot fit is an
    error, not a wrong score.
    """
    seqs, cont_lens = [], []
    for context, continuation in pairs:
        stripped = context.rstrip(" ")
        context, continuation = stripped, context[len(stripped):] + continuation
        cont = _encode(tokenizer, continuation)
        if not cont:
            raise ValueError(f"empty continuation after context {context[-40:]!r}")
        ctx = _encode(tokenizer, context)
        if not ctx:
            if tokenizer.eos_token_id is None:
                raise ValueError("empty context and the tokenizer has no EOS token to stand in for it")
            ctx = [tokenizer.eos_token_id]
        seqs.append(ctx + cont)
        cont_lens.append(len(cont))
    cut = max(len(s) for s in seqs) - (max_len + 1)
    if cut > 0:
        if any(len(s) - n <= cut for s, n in zip(seqs, cont_lens)):
            longest = max(range(len(pairs)), key=lambda i: cont_lens[i])
            raise ValueError(f"a continuation of {cont_lens[longest]} tokens ({pairs[longest][1][:40]!r}) leaves "
                             f"no room for context in the model's {max_len}-token window")
        seqs = [s[cut:] for s in seqs]
    return seqs, cont_lens, cut > 0


def _units(group: int, seqs: list[list[int]], cont_lens: list[int]) -> list[_Unit]:
    """Split a group at its shared prefix: every token before the first continuation token they differ in."""
    ctx_lens = [len(s) - n for s, n in zip(seqs, cont_lens)]
    shared = 0
    while shared < min(ctx_lens) and len({s[shared] for s in seqs}) == 1:
        shared += 1
    if shared == 0:  # nothing in common (e.g. a Winogrande blank at the start): each request alone
        return [_Unit(group, [i], s[:c], [s[c:]], [n]) for i, (s, c, n) in enumerate(zip(seqs, ctx_lens, cont_lens))]
    return [_Unit(group, list(range(len(seqs))), seqs[0][:shared], [s[shared:] for s in seqs], cont_lens)]


def _cache_kwargs(model, cache) -> dict:
    # transformers 5 renamed forward's `past_key_values` to `cache` (the old name warns); 4.x knows only the old one.
    # The class's forward: training may have wrapped this instance's (train/loss.py) in a generic signature,
    # and sharded evaluation wraps the model itself (eval.sharding.Lockstep.wrapped_model).
    forward = type(getattr(model, "wrapped_model", model)).forward
    name = "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"
    return {name: cache}


def _batch_prefix(units: list[_Unit]) -> int:
    """Tokens every unit's prefix starts with (k-shot demonstrations), leaving each unit one of its own."""
    n = min(len(u.prefix) for u in units) - 1
    head = units[0].prefix
    for u in units[1:]:
        n = next((i for i in range(n) if u.prefix[i] != head[i]), n)
    return n


# no_grad, not inference_mode: in-loop evaluation runs the training model, and under ZeRO-3 the
# parameters it gathers here would become inference tensors that training's backward cannot save.
@torch.no_grad()
def _score_batch(model, units: list[_Unit], pad: int) -> list[list[float]]:
    device = next(model.parameters()).device
    cache = DynamicCache(config=model.config)
    # What the whole batch shares (the same few-shot demonstrations) runs once, as one row, where it is
    # long enough to pay for the extra forward pass ("Question:" alone is not).
    shared = _batch_prefix(units) if len(units) > 1 else 0
    shared = shared if shared >= MIN_BATCH_PREFIX else 0
    if shared:
        model(input_ids=torch.tensor([units[0].prefix[:shared]], device=device), use_cache=True, logits_to_keep=1,
              **_cache_kwargs(model, cache))
        cache.batch_select_indices(torch.zeros(len(units), dtype=torch.long, device=device))
    ids, mask = pad_right([u.prefix[shared:] for u in units], pad)
    mask = torch.cat([torch.ones(len(units), shared, dtype=mask.dtype), mask], 1)
    # Only each prefix's last position, which predicts its first rest token, is projected onto the
    # vocabulary (a 1-D `logits_to_keep` keeps the same positions in every row, in any transformers >= 4.57).
    keep = sorted({len(u.prefix) - shared - 1 for u in units})
    out = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=True,
                position_ids=(shared + torch.arange(ids.shape[1])).expand(len(units), -1).to(device),
                logits_to_keep=torch.tensor(keep, device=device), **_cache_kwargs(model, cache))
    which = torch.tensor([keep.index(len(u.prefix) - shared - 1) for u in units], device=device)
    first = torch.log_softmax(out.logits[torch.arange(len(units), device=device), which].float(), dim=-1)

    rows = [b for b, u in enumerate(units) for _ in u.rests]
    rests = [r for u in units for r in u.rests]
    # token_lp[r, j]: log p(rest token j of row r); the prefix's last position predicts token 0.
    targets, valid = pad_right(rests, pad)
    scored = valid.clone()
    for r, n_cont in enumerate(n for u in units for n in u.cont_lens):
        scored[r, :len(rests[r]) - n_cont] = 0  # rest tokens before the continuation belong to the context
    targets, valid, scored = targets.to(device), valid.to(device), scored.to(device).bool()
    token_lp = torch.zeros(targets.shape, device=device)
    token_lp[:, 0] = first[torch.tensor(rows, device=device)].gather(1, targets[:, :1])[:, 0]
    if targets.shape[1] > 1:
        # A rest's last token is never fed (nothing it predicts is scored), as in lm-eval.
        cache.batch_select_indices(torch.tensor(rows, device=device))
        # The cache holds each row's prefix padded to the longest one: mask the padding, and number positions
        # from the true prefix length so rotary embeddings match an unpadded sequence.
        positions = torch.tensor([[len(units[b].prefix)] for b in rows]) + torch.arange(targets.shape[1] - 1)
        out = model(input_ids=targets[:, :-1], attention_mask=torch.cat([mask[rows].to(device), valid[:, :-1]], 1),
                    position_ids=positions.to(device), use_cache=True, **_cache_kwargs(model, cache))
        logits = out.logits.float()
        token_lp[:, 1:] = logits.gather(2, targets[:, 1:, None])[..., 0] - torch.logsumexp(logits, dim=-1)
    sums = torch.where(scored, token_lp, 0.0).sum(1).tolist()  # one transfer for the whole batch
    out_scores, i = [], 0
    for u in units:
        out_scores.append(sums[i:i + len(u.rests)])
        i += len(u.rests)
    return out_scores


@dataclass
class Encoded:
    """Groups tokenized into forward units: what `score_encoded` runs, as often as there are checkpoints."""
    scores: list[GroupScores]  # per group its lengths and truncation, its log-probabilities not yet scored
    units: list[_Unit]


def encode_groups(tokenizer, groups: Sequence[Sequence[tuple[str, str]]], max_len: int) -> Encoded:
    """Tokenize every request; a ValueError names the first one no model of `max_len` tokens can score."""
    scores, units = [], []
    for g, pairs in enumerate(groups):
        if not pairs:
            raise ValueError(f"group {g} has no requests")
        seqs, cont_lens, truncated = encode_group(tokenizer, pairs, max_len)
        scores.append(GroupScores([0.0] * len(pairs), cont_lens, truncated))
        units.extend(_units(g, seqs, cont_lens))
    # Longest first: similar lengths share a batch (little padding) and memory peaks at the start.
    units.sort(key=lambda u: -(len(u.prefix) + max(len(r) for r in u.rests)))
    return Encoded(scores, units)


def score_encoded(model, encoded: Encoded, pad: int, batch_size: int = 8) -> list[GroupScores]:
    """Run the forwards of `encode_groups`' units, `batch_size` units per forward; `encoded` is left as it was."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    units = encoded.units
    results = [GroupScores(list(s.logprobs), s.n_tokens, s.truncated) for s in encoded.scores]
    for start in range(0, len(units), batch_size):
        raise_if_stopped()
        batch = units[start:start + batch_size]
        for u, unit_scores in zip(batch, _score_batch(model, batch, pad)):
            for request, score in zip(u.requests, unit_scores):
                results[u.group].logprobs[request] = score
    return results

