"""The reference's variant names: ``task|||tK|||PERM`` read as the transform it applied."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from reference_format import reference_inverse, reference_view

from arcpipe.arc.augment import Transform
from arcpipe.arc.identifiers import parse_variant_name, read_identifiers
from arcpipe.errors import ArcpipeError


@pytest.mark.parametrize("dihedral", range(8))
def test_a_name_is_the_transform_the_reference_applied_and_inverts(dihedral: int) -> None:
    rng = np.random.default_rng(dihedral)
    perm = "0" + "".join(str(c) for c in rng.permutation(np.arange(1, 10)))
    name = f"00576224|||t{dihedral}|||{perm}"
    task, transform = parse_variant_name(name)
    grid = rng.integers(0, 10, size=(3, 5))
    assert task == "00576224" and transform.name(task) == name
    view = transform.view(grid)
    assert np.array_equal(view, reference_view(name, grid))
    assert np.array_equal(transform.invert(view), grid)
    assert np.array_equal(transform.invert(view), reference_inverse(name, view))


def test_the_colour_digits_say_what_each_colour_becomes() -> None:
    _, transform = parse_variant_name("t|||t0|||0213456789")
    assert transform.view(np.array([[1, 2, 3]])).tolist() == [[2, 1, 3]]  # 1 -> PERM[1] = 2


def test_a_bare_name_is_the_original() -> None:
    task, transform = parse_variant_name("Center1")
    assert task == "Center1" and transform.dihedral == 0
    assert transform.colours.tolist() == list(range(10))


@pytest.mark.parametrize(
    "name",
    [
        "a|||t8|||0123456789",  # no dihedral 8
        "a|||x1|||0123456789",
        "a|||t1|||1023456789",  # colour 0 not fixed
        "a|||t1|||0123456788",  # not a permutation
        "a|||t1|||012345678",  # nine digits
        "a|||t1",
        "|||t1|||0123456789",
        "",
    ],
)
def test_malformed_names_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_variant_name(name)
    path = tmp_path / "identifiers.json"
    path.write_bytes(orjson.dumps(["<blank>", "ok", name]))
    with pytest.raises(ArcpipeError, match="row 2") as err:
        read_identifiers(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (["a", "b"], "starting with"),
        ({"0": "<blank>"}, "starting with"),
        (["<blank>", 3], "must be a string"),
        (["<blank>", "a", "b", "a|||t0|||0123456789"], "rows 1 and 3 name the same variant"),
    ],
)
def test_bad_identifiers_files_are_one_line_errors(
    content: object, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "identifiers.json"
    path.write_bytes(orjson.dumps(content))
    with pytest.raises(ArcpipeError, match=message):
        read_identifiers(path)
    path.write_text("[not json")
    with pytest.raises(ArcpipeError, match="not valid JSON"):
        read_identifiers(path)


def test_rows_are_found_by_task_and_transform(tmp_path: Path) -> None:
    names = ["<blank>", "b|||t2|||0123456789", "a", "b", "a|||t7|||0987654321"]
    path = tmp_path / "identifiers.json"
    path.write_bytes(orjson.dumps(names))
    table = read_identifiers(path)
    assert table.rows == 5 and table.task_ids == ["b", "a"]
    assert {t: r.tolist() for t, r in table.task_rows().items()} == {"b": [1, 3], "a": [2, 4]}
    wanted = [Transform.identity(), *(parse_variant_name(names[i])[1] for i in (4, 1))]
    found = table.find(
        ["a", "b", "c"],
        np.array([0, 0, 1, 2]),
        np.array([wanted[0].dihedral, wanted[1].dihedral, wanted[2].dihedral, 0]),
        np.stack([wanted[0].colours, wanted[1].colours, wanted[2].colours, wanted[0].colours]),
    )
    assert found.tolist() == [2, 4, 1, -1]  # task c is not named
