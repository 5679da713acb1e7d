"""Units in one syntax, pint's: the drivers' capabilities, registered capabilities, campaign parameters."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import BaseModel, Field, ValidationError

from labweave.drivers.base import Instrument, Operation
from labweave.schemas.campaign import ContinuousParameter
from labweave.schemas.capability import Capability
from labweave.schemas.units import canonical_unit, parse_unit, schema_units
from labweave.services.tenant.catalog import INSTRUMENTS, build
from tests.server.helpers import open_lab


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_every_published_unit_is_spelled_the_one_way(name, tmp_path):
    if name == "tomato":  # its only backend talks to a daemon, which publishing capabilities needs not
        instrument = build(name, "tomato", state=tmp_path, options={"port": 1, "pipeline": "p"})
    else:
        instrument = build(name, state=tmp_path)
    units = [(cap["method"], where, field, unit)
             for cap in instrument.capabilities()
             for where in ("json_schema_specifications", "json_schema_result_output")
             for field, unit in schema_units(cap[where])]
    assert len(units) >= 2, units  # every instrument publishes some
    for method, where, field, unit in units:
        assert canonical_unit(unit) == unit, (method, where, field)


def test_lab_units_read_as_physics_says():
    assert parse_unit("electron_volt / atom").dimensionality == parse_unit("kJ/mol").dimensionality
    assert parse_unit("unit_cell / pulse").dimensionless
    assert str(parse_unit("1 / micrometer ** 2")) == "1 / micrometer ** 2"


class _Burn(BaseModel):
    fluence: float = Field(json_schema_extra={"unit": "J/cm2"})


class _Done(BaseModel):
    ok: bool


class _Burner(Instrument):
    name: ClassVar[str] = "burner"
    operations: ClassVar[tuple[Operation, ...]] = (Operation("burn", "laser", _Burn, _Done, run="burn"),)


def test_a_driver_with_an_unreadable_unit_cannot_publish():
    with pytest.raises(ValueError) as refused:
        _Burner(backend=None).capabilities()  # type: ignore[arg-type]
    message = str(refused.value)
    assert message.startswith("burner burn/laser: json_schema_specifications:")
    assert "fluence: unit 'J/cm2' is not a unit in pint's syntax (write powers as 'cm ** 2')" in message


def test_finales2_capabilities_keep_their_units(finales2):
    files = sorted((finales2.directory / "serialized_quantities").rglob("*.json"))
    assert len(files) >= 10
    seen = set()
    for path in files:
        data = finales2.load(str(path.relative_to(finales2.directory)))
        cap = Capability.model_validate(data)
        for where in ("json_schema_specifications", "json_schema_result_output"):
            assert getattr(cap, where) == data[where]  # kept as written
            seen |= {unit for _, unit in schema_units(data[where])}
    assert {"kelvin", "1 / hour", "centimeter ** 3 * gram"} <= seen


def test_a_capability_with_an_unreadable_unit_gets_a_422_naming_the_field(sqlite_url):
    lab = open_lab(sqlite_url, tenants=False)
    cap = {"quantity": "hardness", "method": "indenter",
           "json_schema_specifications": {"type": "object", "properties": {
               "load": {"type": "number", "unit": "newton"},
               "tip": {"type": "object", "properties": {"radius": {"type": "number", "unit": "um"}}}}},
           "json_schema_result_output": {"type": "object", "properties": {"hv": {"type": "number", "unit": "GPa"}}}}
    assert lab.post("op", "/api/v1/capabilities", json=cap).status_code == 201
    cap["json_schema_specifications"]["properties"]["tip"]["properties"]["radius"]["unit"] = "microns2"
    r = lab.post("op", "/api/v1/capabilities", json=cap)
    assert r.status_code == 422
    detail = str(r.json()["detail"])
    assert "json_schema_specifications" in detail and "tip.radius: unit 'microns2' is not a unit" in detail


def test_a_campaign_parameter_unit_must_be_a_unit():
    assert ContinuousParameter(name="fluence", lower=1, upper=2, unit="J / cm ** 2").unit == "J / cm ** 2"
    with pytest.raises(ValidationError) as refused:
        ContinuousParameter(name="fluence", lower=1, upper=2, unit="J/cm2")
    error = refused.value.errors()[0]
    assert error["loc"] == ("unit",) and "'J/cm2' is not a unit in pint's syntax" in error["msg"]


@pytest.mark.parametrize("text, reason", [
    ("9**9**9", "a power of a power"),
    ("m ** (999**999**999)", "a power of a power"),
    ("(9 ** 999) ** 999", "a unit's only numbers are powers"),
    ("m * 2 ** 999999", "a unit's only numbers are powers"),
    ("m" * 201, "longer than 200 characters"),
])
def test_arithmetic_is_refused_before_pint_evaluates_it(text, reason):
    """pint evaluates a unit's numbers as Python does: 9**9**9 would keep the server busy for hours."""
    with pytest.raises(ValueError, match=reason):
        parse_unit(text)
    for fine in ("m ** (1/2)", "s^-1", "1 / hour", "angstrom ** (-1/3) * electron_volt", "inch_Hg_32F"):
        parse_unit(fine)
