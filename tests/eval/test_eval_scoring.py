"""Shared-prefix batched scoring equals scoring each request alone and a direct forward pass."""
import pytest
import torch

from eval.scoring import _batch_prefix, _units, encode_group
from eval_helpers import score_groups

GROUPS = [
    [("The river runs", " past the mill"), ("The river runs", " fast"), ("The river runs", " on Tuesday and more")],
    [("Question: What do plants need to grow?\nAnswer:", " water"),
     ("Question: What do plants need to grow?\nAnswer:", " light and soil with nutrients")],
    [("She opened the window because the", " room was warm"), ("He closed the door because the", " room was warm")],
    [("The committee met on Tuesday ", "to vote"), ("The committee met on Tuesday ", "to talk about bread")],
    [("A", " b"), ("A", " café über")],
]


def direct(model, tokenizer, context, continuation):
    """log p(continuation | context) from one plain forward pass over the concatenated text."""
    ids = tokenizer.encode(context + continuation, add_special_tokens=False)
    n_ctx = len(tokenizer.encode(context, add_special_tokens=False))
    assert ids[:n_ctx] == tokenizer.encode(context, add_special_tokens=False)  # boundary falls between tokens
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return sum(logp[j - 1, ids[j]].item() for j in range(n_ctx, len(ids)))


@pytest.mark.parametrize("arch", ["olmo2", "llama"])
def test_batched_shared_prefix_equals_one_at_a_time_and_direct_forward(tokenizer, make_model, arch):
    model = make_model(arch=arch, seed=3)
    batched = score_groups(model, tokenizer, GROUPS, batch_size=8)
    small_batches = score_groups(model, tokenizer, GROUPS, batch_size=2)
    for group, got, got2 in zip(GROUPS, batched, small_batches):
        for (context, continuation), lp, lp2 in zip(group, got.logprobs, got2.logprobs):
            alone = score_groups(model, tokenizer, [[(context, continuation)]], batch_size=1)[0].logprobs[0]
            reference = direct(model, tokenizer, context.rstrip(" "), context[len(context.rstrip(" ")):] + continuation)
            assert lp == pytest.approx(alone, abs=1e-5)
            assert lp2 == pytest.approx(alone, abs=1e-5)
            assert lp == pytest.approx(reference, abs=1e-5)
        assert not got.truncated


@pytest.mark.parametrize("arch", ["olmo2", "llama"])
def test_demonstrations_shared_by_a_batch_run_once_and_score_as_alone(tokenizer, make_model, arch):
    model = make_model(arch=arch, seed=4, seq_len=256)
    demos = "Question: What do plants need to grow?\nAnswer: water\n\nQuestion: Who met on Tuesday?\nAnswer: the committee\n\n"
    groups = [[(demos + c, t) for c, t in g] for g in GROUPS] + [[(demos.rstrip(), " Question")]]
    units = [u for g, pairs in enumerate(groups) for u in _units(g, *encode_group(tokenizer, pairs, 256)[:2])]
    shared = _batch_prefix(units)
    assert shared >= len(tokenizer.encode(demos.rstrip(), add_special_tokens=False)) - 1
    inputs = []  # the shape of every forward's input_ids
    hook = model.register_forward_pre_hook(lambda m, args, kw: inputs.append(tuple(kw["input_ids"].shape)),
                                           with_kwargs=True)
    try:
        scored = score_groups(model, tokenizer, groups, batch_size=8)
    finally:
        hook.remove()
    assert inputs[0] == (1, shared)  # the demonstrations ran once, as one row, before the batch
    for got, group in zip(scored, groups):
        for (context, continuation), lp in zip(group, got.logprobs):
            assert lp == pytest.approx(direct(model, tokenizer, context.rstrip(" "),
                                              context[len(context.rstrip(" ")):] + continuation), abs=1e-5)


def test_trailing_context_space_moves_to_the_continuation(tokenizer):
    a, _, _ = encode_group(tokenizer, [("The river runs ", "past")], 64)
    b, _, _ = encode_group(tokenizer, [("The river runs", " past")], 64)
    assert a == b


def test_long_context_is_truncated_from_the_left_and_flagged(tokenizer, make_model):
    model = make_model(seq_len=16)
    context = "The river runs past the old mill and the children watch the boats go by " * 3
    [scores] = score_groups(model, tokenizer, [[(context, " in the morning"), (context, " light")]])
    assert scores.truncated
    seqs, cont_lens, truncated = encode_group(tokenizer, [(context, " in the morning"), (context, " light")], 16)
    # 17 tokens kept: the last one is never fed, so 16 positions run, as lm-eval's max_length + 1 window
    assert truncated and max(len(s) for s in seqs) == 17 and cont_lens == scores.n_tokens
    seq, n = seqs[0], cont_lens[0]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([seq[:-1]])).logits[0], -1)
    assert scores.logprobs[0] == pytest.approx(sum(logp[j - 1, seq[j]].item() for j in range(len(seq) - n, len(seq))), abs=1e-5)


def test_a_sequence_of_window_plus_one_tokens_is_not_truncated(tokenizer, make_model):
    """lm-eval's rule: max_length + 1 tokens fit, as the last one is never fed; below that nothing is cut."""
    context, continuation = "The river runs past the old mill and", " the children watch"
    n = len(tokenizer.encode(context + continuation, add_special_tokens=False))
    model = make_model(seq_len=n - 1)
    [fits] = score_groups(model, tokenizer, [[(context, continuation)]])
    assert not fits.truncated
    assert fits.logprobs[0] == pytest.approx(direct(model, tokenizer, context, continuation), abs=1e-5)
    [cut] = score_groups(model, tokenizer, [[(context, continuation)]], max_len=n - 2)
    assert cut.truncated


def test_scoring_raises_no_deprecation_warnings(tokenizer, model):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        score_groups(model, tokenizer, GROUPS[:2])


def test_unfittable_or_empty_continuation_is_an_error(tokenizer, make_model):
    model = make_model(seq_len=8)
    with pytest.raises(ValueError, match="leaves no room for context"):
        score_groups(model, tokenizer, [[("ctx", " the river runs past the old mill and the children")]])
    with pytest.raises(ValueError, match="empty continuation"):
        score_groups(model, tokenizer, [[("ctx", "")]])
