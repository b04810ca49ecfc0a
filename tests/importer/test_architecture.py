"""The reference run's config fields, mapped onto arcpipe's, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from reference_format import LEARNED, MLP_T, PAPER_ROPE, TOP_LEVEL, URM

from arcpipe.config import ModelConfig
from arcpipe.errors import ArcpipeError
from arcpipe.importer.architecture import reference_config

SOURCE = Path("all_config.yaml")


def mapped(arch: dict, **top: object):
    return reference_config({**TOP_LEVEL, **top, "arch": arch}, SOURCE)


def test_trm_fields_map_one_to_one() -> None:
    config = mapped(PAPER_ROPE)
    assert config.family == "trm" and config.ema is True
    assert config.section("model") == {
        "state": "two",
        "mlp": "swiglu",
        "cycles": 4,  # H_cycles
        "latent_steps": 5,  # L_cycles
        "num_layers": 2,  # L_layers
        "hidden_size": 32,
        "num_heads": 2,
        "expansion": 4.0,
        "puzzle_emb_dim": 32,  # puzzle_emb_ndim
        "puzzle_emb_len": 16,
        "pos_encodings": "rope",
        "supervision_steps": 10,  # halt_max_steps
        "halt_exploration_prob": 0.1,
        "token_mixer": "attention",  # mlp_t false
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
    }
    train = config.section("train")
    assert train["dtype"] == "auto" and train["loss"] == "stablemax"  # forward_dtype bfloat16
    assert train["global_batch_size"] == 768 and train["lr_schedule"] == "constant"
    fields = {f["reference"]: f["arcpipe"] for f in config.fields}
    assert fields["arch.H_layers"] == "" and fields["arch.L_cycles"] == "model.latent_steps"


def test_mlp_t_learned_positions_and_urm() -> None:
    assert mapped(MLP_T).section("model")["token_mixer"] == "mlp"
    assert mapped(MLP_T).section("model")["pos_encodings"] == "none"
    assert mapped({**MLP_T, "pos_encodings": "anything"}).section("model")["pos_encodings"] == (
        "none"  # the reference: anything but rope or learned is none
    )
    assert mapped(LEARNED).section("model")["pos_encodings"] == "learned"
    urm = mapped({**URM, "pos_encodings": "learned"}, use_muon=True, lr_min_ratio=0.1)
    model, train = urm.section("model"), urm.section("train")
    assert urm.family == "urm"
    assert (model["state"], model["mlp"], model["puzzle_emb_len"]) == ("single", "conv_swiglu", 0)
    assert (model["cycles"], model["latent_steps"], model["supervision_steps"]) == (2, 3, 7)
    assert model["pos_encodings"] == "rope"  # URM ignores the key
    assert model["halt_exploration_prob"] == 0.1 and model["num_layers"] == 3
    assert train["optimizer"] == "muon" and train["lr_schedule"] == "cosine"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1"}, "HRM"),
        ({"name": "recursive_reasoning.trm_hier6@TinyRecursiveReasoningModel_ACTV1"}, "six"),
        ({"name": "recursive_reasoning.trm_singlez@TinyRecursiveReasoningModel_ACTV1"}, "single"),
        ({"name": "recursive_reasoning.transformers_baseline@Model_ACTV2"}, "baseline"),
        ({"name": "my.model@Net"}, "not an architecture arcpipe implements"),
        ({"loss": {"name": "losses@OtherHead", "loss_type": "stablemax_cross_entropy"}}, "loss"),
        ({"loss": {"name": "losses@ACTLossHead", "loss_type": "focal"}}, "loss"),
        ({"loss": {"name": "losses@ACTLossHead"}}, "loss"),
        ({"no_ACT_continue": False}, "continue loss"),
        ({"forward_dtype": "float16"}, "forward_dtype"),
        ({"H_cycles": "3"}, "arch.H_cycles must be int"),
        ({"H_cycles": None}, "arch.H_cycles must be int"),
        ({"hidden_size": 31}, "multiple of model.num_heads"),
        ({"puzzle_emb_ndim": 0}, "puzzle_emb_ndim 0"),
        ({"new_knob": 1}, "arch.new_knob is not a field"),
    ],
)
def test_what_arcpipe_does_not_build_is_one_line(change: dict, message: str) -> None:
    with pytest.raises(ArcpipeError, match=message) as err:
        config = mapped({**PAPER_ROPE, **change})
        ModelConfig(**config.section("model"))  # what the import builds next
    assert "\n" not in str(err.value)


def test_a_missing_required_field_and_a_missing_arch_block() -> None:
    arch = {k: v for k, v in PAPER_ROPE.items() if k != "L_cycles"}
    with pytest.raises(ArcpipeError, match=r"arch\.L_cycles is missing"):
        mapped(arch)
    with pytest.raises(ArcpipeError, match="no 'arch:' block"):
        reference_config(TOP_LEVEL, SOURCE)
