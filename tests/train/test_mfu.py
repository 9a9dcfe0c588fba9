"""The node plan's MFU table (train/mfu.py): a stated assumption, shaped as small models behave."""
from ladder.core.sizes import ModelShape
from train.mfu import SEQ_LENS, WIDTH_SHARE, expected_mfu, mfu_share


def shape(d_model: int, seq_len: int = 2048) -> ModelShape:
    return ModelShape(name="s", d_model=d_model, n_layers=4, n_heads=1, mlp_hidden=4 * d_model,
                      vocab_size=32768, seq_len=seq_len)


def test_mfu_grows_with_width_and_falls_with_sequence_length():
    widths = [128, 224, 320, 448, 576, 704, 1024, 2048, 8192]
    for seq_len in SEQ_LENS:
        shares = [mfu_share(d, seq_len) for d in widths]
        assert shares == sorted(shares) and shares[-1] == shares[-2]  # flat beyond the widest row
    for d in widths:
        assert [mfu_share(d, t) for t in (512, *SEQ_LENS, 8192)] == sorted(
            (mfu_share(d, t) for t in (512, *SEQ_LENS, 8192)), reverse=True)
    # the table's own rows where the width is one of them, interpolated (in log2 width) between
    assert mfu_share(512, 2048) == WIDTH_SHARE[512][1]
    assert WIDTH_SHARE[256][1] < mfu_share(362, 2048) < WIDTH_SHARE[512][1]


def test_the_node_ladder_sizes_get_what_small_models_reach():
    """At launcher.expected_mfu = 0.35 for a wide model: 10-20 % at the 10-20M sizes (d224, d320), 25-30 % at
    110M (d704), where the plan assumed 35 % for all."""
    assert all(0.10 <= expected_mfu(shape(d), 0.35) <= 0.20 for d in (224, 320))
    assert 0.25 <= expected_mfu(shape(704), 0.35) <= 0.30
    assert expected_mfu(shape(2048), 0.35) == 0.35
