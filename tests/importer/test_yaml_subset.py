"""The YAML subset the reference's ``all_config.yaml`` is written in."""

from __future__ import annotations

from pathlib import Path

import pytest
from reference_format import PAPER_ROPE, TOP_LEVEL, URM, all_config_yaml

from arcpipe.errors import ArcpipeError
from arcpipe.importer.yaml_subset import YamlError, parse_yaml, read_yaml


@pytest.mark.parametrize("arch", [PAPER_ROPE, URM], ids=["trm", "urm"])
def test_what_yaml_dump_writes_reads_back(arch: dict) -> None:
    assert parse_yaml(all_config_yaml(arch)) == {**TOP_LEVEL, "arch": arch}


def test_wrapped_quoted_commented_and_flow_values() -> None:
    text = """\
# written by hand
arch:
  name: recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1  # the class
  rms_norm_eps: 1.0e-05
  rope_theta: 1e4
  label: 'it''s: quoted'
  other: "tab\\tand \\u00e9"
checkpoint_path: checkpoints/Arc-aug-1000-ACT-torch/HierarchicalReasoningModel_ACTV1
  placid-husky
loop_deltas: [0, 8]
empty: {}
nothing: ~
evaluators:
- name: arc@ARC
  aggregated_voting: False
-
  name: second
flags: [yes, off, null]
"""
    assert parse_yaml(text) == {
        "arch": {
            "name": "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1",
            "rms_norm_eps": 1e-05,
            "rope_theta": 10000.0,
            "label": "it's: quoted",
            "other": "tab\tand \u00e9",
        },
        "checkpoint_path": "checkpoints/Arc-aug-1000-ACT-torch/"
        "HierarchicalReasoningModel_ACTV1 placid-husky",
        "loop_deltas": [0, 8],
        "empty": {},
        "nothing": None,
        "evaluators": [{"name": "arc@ARC", "aggregated_voting": False}, {"name": "second"}],
        "flags": [True, False, None],
    }


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: &anchor 2\n", 2, "unsupported YAML"),
        ("arch:\n  puzzle_emb_ndim: ${.hidden_size}\n", 2, "unresolved interpolation"),
        ("a: |\n  text\n", 1, "unsupported YAML"),
        ("a: 1\n\tb: 2\n", 2, "tab"),
        ("a:\n    b: 1\n  c: 2\n", 3, "unexpected indentation"),
        ("a: 1\na: 2\n", 2, "duplicate key"),
        ("a: 'open\n", 1, "unterminated quote"),
        ("a: [1, [2]]\n", 1, "nested flow"),
        ("just words\n", 1, "expected 'key: value'"),
    ],
)
def test_what_is_outside_the_subset_is_named_with_its_line(
    text: str, line: int, message: str, tmp_path: Path
) -> None:
    with pytest.raises(YamlError, match=message) as err:
        parse_yaml(text)
    assert err.value.line == line
    path = tmp_path / "all_config.yaml"
    path.write_text(text)
    with pytest.raises(ArcpipeError, match=f"line {line}: ") as err:
        read_yaml(path)
    assert str(path) in str(err.value)
