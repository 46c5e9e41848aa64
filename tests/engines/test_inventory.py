"""The engines' inventories (gatecheck.engines.inventory, each engine's in gatecheck/engines/<engine>/inventory.py):
for each installed engine every parameter of its recurrent API, read from the installed version, has an entry
and every entry names a parameter that version has (each engine's test carries its framework's marker; a missing
engine skips with the reason, an error where GATECHECK_REQUIRE names it); every exercised entry's options exist
and an oracle that calls the API offers them; and the comparison itself finds what it should."""

import pathlib
from typing import overload

import pytest

from gatecheck.engines import INVENTORIES, ORACLES
from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import FRAMEWORKS
from gatecheck.model.options import OPTIONS

ENGINES = pathlib.Path(inv.__file__).parent


def _engine(inventory):
    marker = FRAMEWORKS[inventory.framework].marker
    return pytest.param(inventory, id=inventory.engine, marks=getattr(pytest.mark, marker))


@pytest.mark.parametrize("inventory", [_engine(i) for i in INVENTORIES])
def test_every_parameter_is_classified_and_every_entry_exists(request, inventory):
    from conftest import require_framework

    require_framework(request.config, inventory.framework)
    version, found = inventory.introspect()
    assert found, f"engine {inventory.engine}: its introspection found no API"
    problems = inv.problems(inventory, found, version)
    assert not problems, "\n".join(problems)


def test_exercised_entries_name_options_that_exist_and_an_oracle_of_the_api_offers_them():
    wrong = []
    for inventory in INVENTORIES:
        for api in inventory.apis:
            where = f"engine {inventory.engine}: {api.name}"
            for name in api.oracles:
                if name not in ORACLES:
                    wrong.append(f"{where}: oracle {name!r} is not registered")
                elif ORACLES[name].framework != inventory.framework:
                    wrong.append(f"{where}: oracle {name!r} is of {ORACLES[name].framework}, not {inventory.framework}")
            oracles = [ORACLES[n] for n in api.oracles if n in ORACLES]
            for entry in api.entries:
                if entry.unknown():
                    wrong.append(f"{where}: {entry.parameter}: by names {list(entry.unknown())}, neither an option of "
                                 f"gatecheck.model.options.OPTIONS nor a case axis ({sorted(inv.AXES)})")
                for option in entry.options():
                    if option in OPTIONS and not any(o.offers((option,)) for o in oracles):
                        wrong.append(f"{where}: {entry.parameter} is exercised by {option!r}, which none of "
                                     f"{list(api.oracles)} offers")
    assert not wrong, "\n".join(wrong)


def test_one_inventory_per_engine_that_calls_a_framework_and_nothing_else_lists_them():
    """The registry holds one inventory per engine folder with an inventory.py; every framework with oracles has
    one, but numpy (the references) and jax (this project's own lax.scan code: no layer of JAX's)."""
    engines = [i.engine for i in INVENTORIES]
    assert len(engines) == len(set(engines))
    assert sorted(engines) == sorted(p.parent.name for p in ENGINES.glob("*/inventory.py"))
    assert {i.framework for i in INVENTORIES} == {o.framework for o in ORACLES.values()} - {"numpy", "jax"}
    for i in INVENTORIES:
        assert i.introspect.__module__ == f"gatecheck.engines.{i.engine}.inventory"


# --- the machinery, on an inventory made here ---------------------------------------------------------------

def _toy(*entries):
    return inv.Inventory("toy", "torch", "toylib", (inv.Api("toy.Layer", entries),), introspect=None)


FOUND = {"toy.Layer": ("units", "use_bias", "seed")}
ENTRIES = (inv.exercised("units", ("H",), "the case's H"), inv.exercised("use_bias", ("nobias",), "nobias"),
           inv.declined("seed", "dropout's", since=(3, 0)))


def test_a_complete_inventory_has_no_problem():
    assert inv.problems(_toy(*ENTRIES), FOUND, (3, 1)) == []


def test_a_removed_entry_is_named_with_the_engine_the_api_and_the_parameter():
    problems = inv.problems(_toy(*ENTRIES[:2]), FOUND, (3, 1))
    assert problems == ["engine toy (toylib 3.1): toy.Layer: parameter 'seed' is not classified (no entry in "
                        "gatecheck/engines/toy/inventory.py)"]


def test_an_entry_without_its_parameter_is_stale_unless_its_version_range_excludes_it():
    found = {"toy.Layer": ("units", "use_bias")}
    assert inv.stale(_toy(*ENTRIES), found, (3, 1)) == [("toy.Layer", "seed")]
    assert inv.problems(_toy(*ENTRIES), found, (2, 15)) == []  # seed: since 3.0
    assert inv.unclassified(_toy(*ENTRIES), FOUND, (2, 15)) == [("toy.Layer", "seed")]


def test_an_api_the_inventory_lacks_and_a_duplicate_entry_are_problems():
    found = dict(FOUND, **{"toy.Other": ("x",)})
    assert inv.unclassified(_toy(*ENTRIES), found, (3, 1)) == [("toy.Other", "x")]
    problems = inv.problems(_toy(*ENTRIES, inv.fixed("units", "twice")), FOUND, (3, 1))
    assert problems == ["engine toy (toylib 3.1): toy.Layer: parameter 'units' has 2 entries"]


def test_an_entry_states_its_kind_and_what_drives_it_only_when_exercised():
    with pytest.raises(ValueError, match="kind"):
        inv.Entry("units", "used", "why")
    with pytest.raises(ValueError, match="by"):
        inv.Entry("units", inv.EXERCISED, "why")
    with pytest.raises(ValueError, match="by"):
        inv.Entry("units", inv.FIXED, "why", by=("H",))
    assert inv.exercised("x", ("nobias", "H", "nope"), "w").options() == ("nobias", "nope")
    assert inv.exercised("x", ("nobias", "H", "nope"), "w").unknown() == ("nope",)


class _Overloaded:
    @overload
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None: ...

    @overload
    def __init__(self, *args, **kwargs) -> None: ...

    def __init__(self, *args, **kwargs):
        pass


def test_parameters_are_read_from_a_signature_and_from_overloads():
    def f(self, a, b=1, *rest, c, **kw):
        pass

    assert inv.parameters(f) == ("a", "b", "*rest", "c", "**kw")
    assert inv.overloaded_parameters(_Overloaded) == ("input_size", "hidden_size", "bias")
    assert inv.version_tuple("2.13.0+cpu") == (2, 13)
    assert inv.version_tuple("0.12.8") == (0, 12)
