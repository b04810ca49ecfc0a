"""Configs: every shipped recipe loads, overrides apply, mistakes are clear errors."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from arcpipe.config import Config, load_config, save_config, shipped_configs
from arcpipe.errors import ArcpipeError


def test_every_shipped_config_loads() -> None:
    names = shipped_configs()
    assert {"tiny", "arc1", "arc2", "sudoku_mlp", "maze", "kaggle_posttrain"} <= set(names)
    assert {"urm_arc1", "urm_arc2", "urm_sudoku", "urm_tiny", "kaggle_posttrain_urm"} <= set(names)
    assert "cpu" in names
    for name in names:
        config = load_config(name)
        assert isinstance(config, Config), name
        urm = name.startswith("urm") or name == "cpu"
        assert config.model.family == ("urm" if urm else "trm"), name


def test_urm_recipes_have_the_reference_scripts_effective_settings() -> None:
    """urm-reference §6: the three scripts' overrides on cfg_pretrain.yaml and urm.yaml."""
    arc1, arc2, sudoku = (load_config(n) for n in ("urm_arc1", "urm_arc2", "urm_sudoku"))
    for cfg in (arc1, arc2, sudoku):
        m = cfg.model
        assert (m.state, m.mlp, m.conv_param_dtype) == ("single", "conv_swiglu", "bfloat16")
        assert (m.hidden_size, m.num_heads, m.expansion, m.num_layers) == (512, 8, 4.0, 4)
        assert (m.cycles, m.latent_steps, m.supervision_steps) == (2, 6, 16)
        assert (m.token_mixer, m.pos_encodings, m.puzzle_emb_dim, m.prefix_len) == (
            "attention",
            "rope",
            512,
            1,
        )
        assert m.halt_exploration_prob == 0.1
        t = cfg.train
        assert (t.lr, t.lr_warmup_steps, t.lr_schedule, t.beta1, t.beta2) == (
            1e-4,
            2000,
            "constant",
            0.9,
            0.95,
        )
        assert t.ema and t.ema_rate == 0.999 and t.loss == "stablemax"
    for cfg in (arc1, arc2):
        t = cfg.train
        assert (t.global_batch_size, t.epochs, t.weight_decay) == (768, 200_000, 0.1)
        assert (t.puzzle_emb_lr, t.puzzle_emb_weight_decay) == (1e-2, 0.1)
    assert arc1.train.optimizer == "adam_atan2" and arc2.train.optimizer == "muon"
    t = sudoku.train
    assert (t.global_batch_size, t.epochs, t.weight_decay, t.puzzle_emb_weight_decay) == (
        128,
        50_000,
        1.0,
        1.0,
    )
    assert t.puzzle_emb_lr == 1e-4 and t.optimizer == "adam_atan2"
    assert t.eval_interval > 0  # the reference's Sudoku run never evaluates (§9.5); this one does


def test_paper_arc_config_values() -> None:
    cfg = load_config("arc1")
    m, t = cfg.model, cfg.train
    assert (m.hidden_size, m.num_heads, m.num_layers, m.cycles, m.latent_steps) == (512, 8, 2, 3, 4)
    assert m.supervision_steps == 16 and t.global_batch_size == 768
    assert (t.lr, t.puzzle_emb_lr, t.weight_decay, t.lr_warmup_steps) == (1e-4, 1e-2, 0.1, 2000)
    assert t.ema and t.ema_rate == 0.999


def test_overrides_with_and_without_section() -> None:
    cfg = load_config("tiny", ["train.lr=3e-4", "hidden_size=128", "optimizer=adamw", "ema=false"])
    assert cfg.train.lr == 3e-4 and cfg.model.hidden_size == 128
    assert cfg.train.optimizer == "adamw" and cfg.train.ema is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lrr=1", "unknown key train.lrr"),
        ("lrr=1", "unknown key 'lrr'"),
        ("train.lr=fast", "train.lr must be float"),
        ("model.num_heads=2.5", "model.num_heads must be int"),
        ("train.optimizer=sgd", "train.optimizer must be one of"),
        ("model.state=three", "model.state must be one of two, single"),
        ("model.mlp=gelu", "model.mlp must be one of swiglu, conv_swiglu"),
        ("model.conv_param_dtype=float16", "model.conv_param_dtype must be one of"),
        ("model.puzzle_emb_len=-1", "model.puzzle_emb_len must be >= 0"),
        ("model.puzzle_table=shared", "model.puzzle_table must be one of variant, task"),
        ("model.pos_encodings=rope3d", "model.pos_encodings must be one of rope, rope2d"),
        ("train.muon_params=all", "train.muon_params must be one of matrices, hidden"),
        ("train.num_variants=-1", "train.num_variants must be >= 0"),
        ("train.denoise_prob=1.5", "train.denoise_prob must be in \\[0, 1\\]"),
        ("model.hidden_size=102", "multiple of model.num_heads"),
        ("noequals", "key=value"),
    ],
)
def test_bad_overrides_are_clear_errors(override: str, message: str) -> None:
    with pytest.raises(ArcpipeError, match=message):
        load_config("tiny", [override])


def test_a_task_table_needs_puzzle_embeddings_and_recipes_keep_the_reference_table() -> None:
    with pytest.raises(ArcpipeError, match="puzzle_table = task needs puzzle embeddings"):
        load_config("tiny", ["model.puzzle_table=task", "model.puzzle_emb_dim=0"])
    reference = [name for name in shipped_configs() if name != "cpu"]
    assert all(load_config(name).model.puzzle_table == "variant" for name in reference)


def test_the_cpu_recipe_is_urm_tiny_with_the_options_the_protocol_measured() -> None:
    """The protocol (docs/benchmarks.md) ran urm_tiny with these four overrides."""
    measured = load_config(
        "urm_tiny",
        [
            "model.board=boxed",
            "model.puzzle_table=task",
            "train.optimizer=normuon",
            "train.muon_params=hidden",
        ],
    )
    assert dataclasses.replace(load_config("cpu"), description=measured.description) == measured


def test_unknown_recipe_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ArcpipeError, match="no config named 'nope'"):
        load_config("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nhidden_size = 3")
    with pytest.raises(ArcpipeError, match="not valid TOML"):
        load_config(bad)


def test_saved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config("arc2", ["train.lr=2e-4", 'description="x \\"quoted\\""'])
    save_config(cfg, tmp_path / "c.toml")
    assert load_config(tmp_path / "c.toml") == cfg


@pytest.mark.parametrize("name", ["arc1", "arc2"])
def test_boxed_recipes_are_the_paper_recipes_on_boxed_boards(name: str) -> None:
    paper, boxed = load_config(name), load_config(f"{name}_boxed")
    assert paper.model.board == "full" and boxed.model.board == "boxed"
    assert dataclasses.replace(boxed.model, board="full") == paper.model
    assert boxed.train == paper.train


def test_a_recipe_may_start_from_another(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('base = "tiny"\n[train]\nlr = 0.5\n')
    (tmp_path / "more.toml").write_text('base = "mine.toml"\n[model]\nhidden_size = 256\n')
    tiny, more = load_config("tiny"), load_config(tmp_path / "more.toml")
    assert more.train.lr == 0.5 and more.model.hidden_size == 256
    assert dataclasses.replace(more.model, hidden_size=tiny.model.hidden_size) == tiny.model
    (tmp_path / "loop.toml").write_text('base = "loop.toml"\n')
    with pytest.raises(ArcpipeError, match="leads back to itself"):
        load_config(tmp_path / "loop.toml")


def test_boxed_boards_need_attention() -> None:
    with pytest.raises(ArcpipeError, match=r"model\.board = boxed needs model\.token_mixer"):
        load_config("sudoku_mlp", ["model.board=boxed"])


def test_lr_min_ratio_below_one_needs_the_cosine_schedule() -> None:
    """The reference decays with a cosine whenever lr_min_ratio < 1; never silently ignore it."""
    with pytest.raises(
        ArcpipeError, match=re.escape('train.lr_min_ratio = 0.1 needs train.lr_schedule = "cosine"')
    ):
        load_config("arc1", ["train.lr_min_ratio=0.1"])
    with pytest.raises(ArcpipeError, match=re.escape("lr_min_ratio = 1.5")):
        load_config("tiny", ["train.lr_min_ratio=1.5"])
    cosine = load_config("arc1", ["train.lr_min_ratio=0.1", "train.lr_schedule=cosine"]).train
    assert (cosine.lr_schedule, cosine.lr_min_ratio) == ("cosine", 0.1)
    assert load_config("arc1").train.lr_min_ratio == 1.0  # the paper's constant schedule


def test_lr_min_ratio_with_constant_schedule_is_one_line_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from arcpipe.cli import main

    run = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "nodata"), "--out", str(run)]
    result = CliRunner().invoke(main, [*args, "--set", "train.lr_min_ratio=0.5"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "lr_schedule" in result.stderr
    assert not run.exists()
