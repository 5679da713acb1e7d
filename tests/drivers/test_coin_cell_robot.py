"""The coin-cell robot: FINALES2 compatibility, limits, stock, variation, defects, faults, the shelf."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import sys

import jsonschema
import numpy as np
import pytest

from labweave.drivers.base import InstrumentFault, InstrumentStopped, ParameterError, limitations_from_model
from labweave.drivers.cells import REFERENCE_ELECTROLYTE, CellShelf, formulation_from_recipe
from labweave.drivers.coin_cell_robot.backend import StockExhausted
from labweave.drivers.coin_cell_robot.frontend import CoinCellRobot
from labweave.drivers.coin_cell_robot.sim import DEFAULT_PARTS, SimulatedRobotBackend, leak_probability, short_probability
from labweave.schemas.battery import AssemblyInput, FlowInput, StockedChemical

EMC = StockedChemical.EMC.value
LIPF6 = StockedChemical.LIPF6.value


def robot(shelf_dir, **options) -> CoinCellRobot:
    options.setdefault("fault_rate", 0.0)
    return CoinCellRobot(SimulatedRobotBackend(shelf_dir, **options))


def perform(instrument, quantity, method, parameters):
    return asyncio.run(instrument.perform(quantity, method, parameters))


def assembly_request(finales2, cells: int = 4, **cell_changes) -> dict:
    params = copy.deepcopy(finales2.example_parameters("cell_assembly", "autobass_assembly"))
    params["batch_volume"] = cells
    params["cell"].update(cell_changes)
    return params


def merge(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` merged in, nested dicts key by key."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def reference_electrolyte() -> list[dict]:
    return [c.model_dump(mode="json") for c in REFERENCE_ELECTROLYTE]


# -- FINALES2 compatibility -------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "method", "model"),
    [("electrolyte", "flow", FlowInput), ("cell_assembly", "autobass_assembly", AssemblyInput)],
)
def test_finales2_example_requests_fit_the_generated_schemas(finales2, shelf_dir, quantity, method, model):
    params = finales2.example_parameters(quantity, method)
    instrument = robot(shelf_dir)
    capability = next(c for c in instrument.capabilities() if (c["quantity"], c["method"]) == (quantity, method))
    jsonschema.validate(params, capability["json_schema_specifications"])
    assert isinstance(instrument.validate(quantity, method, params), model)
    # the generated schema asks for what FINALES2's asks for
    assert set(finales2.input_schema(quantity, method)["required"]) == set(
        capability["json_schema_specifications"]["required"]
    )


def test_flow_result_validates_against_finales2_output_schema(finales2, shelf_dir):
    instrument = robot(shelf_dir, seed=1)
    params = finales2.example_parameters("electrolyte", "flow")
    result = perform(instrument, "electrolyte", "flow", params)
    jsonschema.validate(result, finales2.output_schema("electrolyte", "flow"))
    assert result["electrolyte"]["volume"] == pytest.approx(params["volume"], rel=0.03)
    assert result["run_info"]["internal_reference"] == result["run_info"]["formulation_info"]["uuid"]
    assert EMC in result["run_info"]["chemicals_info"]


def test_assembly_result_validates_against_finales2_output_schema(finales2, shelf_dir):
    instrument = robot(shelf_dir, seed=2)
    params = finales2.example_parameters("cell_assembly", "autobass_assembly")
    result = perform(instrument, "cell_assembly", "autobass_assembly", params)
    jsonschema.validate(result, finales2.output_schema("cell_assembly", "autobass_assembly"))
    cells = result["batch_output"]
    assert len(cells) == params["batch_volume"] == 8
    assert len({c["cell_info"]["uuid"] for c in cells}) == 8
    assert all(c["cell_info"]["batch"] == result["batch_id"] for c in cells)
    assert all(c["cell_info"]["anode_info"] == params["cell_info"]["anode_info"] for c in cells)
    volumes = [c["cell"]["electrolyte_volume"] for c in cells]
    assert np.mean(volumes) == pytest.approx(35.0, rel=0.03) and np.std(volumes) > 0


def test_limitations_are_derived_from_the_parameter_bounds(shelf_dir):
    by_key = {(x["quantity"], x["method"]): x["limitations"] for x in robot(shelf_dir).limitations()}
    flow = by_key[("electrolyte", "flow")]
    assert flow["volume"] == [{"min": 0.5, "max": 15.0}]  # the model's 20 mL narrowed to the station's 15 mL vial
    component = flow["electrolyte"]["formulation"][0][0]
    assert set(component["chemical"]["InChIKey"]) == {s.value for s in StockedChemical}
    assert component["fraction_type"] == ["molPerMol"]
    assembly = by_key[("cell_assembly", "autobass_assembly")]
    assert assembly["batch_volume"] == [{"min": 1, "max": 64, "step": 1}]
    assert assembly["cell"]["electrolyte_volume"] == [{"min": 10.0, "max": 70.0}]  # the pipette's 70 uL
    assert limitations_from_model(FlowInput) == flow | {"volume": [{"min": 0.5, "max": 20.0}]}


# -- limits --------------------------------------------------------------------------


def _volume(value):
    def change(params):
        params["volume"] = value

    return change


def _component(index, **fields):
    def change(params):
        params["electrolyte"]["formulation"][index].update(fields)

    return change


def _chemical(index, key):
    def change(params):
        params["electrolyte"]["formulation"][index]["chemical"]["InChIKey"] = key

    return change


def _too_much_salt(params):
    salt, ec, emc = params["electrolyte"]["formulation"]
    extra = 0.3 - salt["fraction"]
    salt["fraction"] = 0.3
    emc["fraction"] -= extra


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_volume(50.0), "volume"),
        (_volume(-1.0), "volume"),
        (_chemical(0, "XLYOFNOQVPJJNP-UHFFFAOYSA-N"), "electrolyte.formulation.0.chemical.InChIKey"),  # water
        (_component(0, fraction=0.5), "electrolyte.formulation"),
        (_component(0, fraction_type="volPerVol"), "electrolyte.formulation.0.fraction_type"),
        (_too_much_salt, "electrolyte.formulation.0.fraction"),
    ],
)
def test_flow_refuses_parameters_outside_the_limits(shelf_dir, change, field):
    instrument = robot(shelf_dir)
    params = {"electrolyte": {"formulation": reference_electrolyte()}, "volume": 2.0}
    change(params)
    stock_before = dict(instrument.backend.chemicals)
    with pytest.raises(ParameterError) as caught:
        perform(instrument, "electrolyte", "flow", params)
    assert caught.value.field == field
    assert instrument.backend.chemicals == stock_before
    assert instrument.backend.vials_made == 0


def test_undissolvable_salt_is_refused(shelf_dir):
    params = {
        "electrolyte": {
            "formulation": [
                {
                    "chemical": {"SMILES": "[Li+].F[P-](F)(F)(F)(F)F", "InChIKey": LIPF6},
                    "fraction": 1.0,
                    "fraction_type": "molPerMol",
                }
            ]
        },
        "volume": 1.0,
    }
    with pytest.raises(ParameterError) as caught:
        robot(shelf_dir).validate("electrolyte", "flow", params)
    assert caught.value.field == "electrolyte.formulation.0.fraction"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"batch_volume": 65}, "batch_volume"),
        ({"cell": {"electrolyte_volume": 200.0}}, "cell.electrolyte_volume"),
        (
            {"cell": {"battery_chemistry": {"cathode": {"material": [], "mass_loading": 9.0}}}},
            "cell.battery_chemistry.cathode.mass_loading",
        ),
        ({"cell": {"separator": {"material": "Whatman GF/B"}}}, "cell.separator.material"),
    ],
)
def test_assembly_refuses_parameters_outside_the_limits(finales2, shelf_dir, changes, field):
    params = merge(assembly_request(finales2), changes)
    instrument = robot(shelf_dir)
    with pytest.raises(ParameterError) as caught:
        perform(instrument, "cell_assembly", "autobass_assembly", params)
    assert caught.value.field == field
    assert CellShelf(shelf_dir).uuids() == []


# -- stock -----------------------------------------------------------------------------


def test_formulating_consumes_stock(shelf_dir):
    instrument = robot(shelf_dir)
    before = dict(instrument.backend.chemicals)
    perform(
        instrument, "electrolyte", "flow", {"electrolyte": {"formulation": reference_electrolyte()}, "volume": 10.0}
    )
    used = {k: before[k] - instrument.backend.chemicals[k] for k in before}
    # 1 M LiPF6 in EC:EMC 3:7: about 1.5 g salt, 2.5 mL EC and 6.9 mL EMC in 10 mL
    assert used[LIPF6] == pytest.approx(1.52, rel=0.05)
    assert used[EMC] == pytest.approx(6.9, rel=0.06)
    assert used[StockedChemical.EC.value] == pytest.approx(2.4, rel=0.1)
    assert used[StockedChemical.DMC.value] == 0.0


def test_empty_reservoir_refuses_without_consuming(shelf_dir):
    chemicals = {LIPF6: 50.0, StockedChemical.EC.value: 100.0, EMC: 3.0}
    instrument = robot(shelf_dir, chemicals=chemicals)
    params = {"electrolyte": {"formulation": reference_electrolyte()}, "volume": 4.0}
    perform(instrument, "electrolyte", "flow", params)  # uses about 2.8 mL of the 3 mL of EMC
    left = dict(instrument.backend.chemicals)
    with pytest.raises(StockExhausted) as caught:
        perform(instrument, "electrolyte", "flow", params)
    assert caught.value.item == "EMC" and not caught.value.retryable
    assert instrument.backend.chemicals == left
    instrument.backend.refill(EMC, 100.0)
    perform(instrument, "electrolyte", "flow", params)


def test_empty_magazine_refuses_the_batch_before_the_first_cell(finales2, shelf_dir):
    parts = {"case": 3, "spacer": 10, "spring": 10, "anode disc": 10, "cathode disc": 10, "separator Glasfiber": 10}
    instrument = robot(shelf_dir, parts=parts)
    perform(instrument, "cell_assembly", "autobass_assembly", assembly_request(finales2, cells=2))
    with pytest.raises(StockExhausted) as caught:
        perform(instrument, "cell_assembly", "autobass_assembly", assembly_request(finales2, cells=2))
    assert caught.value.item == "case"
    assert len(CellShelf(shelf_dir).uuids()) == 2
    assert instrument.backend.parts["case"] == 1


def test_named_vial_feeds_the_batch(finales2, shelf_dir):
    instrument = robot(shelf_dir, seed=4)
    electrolyte = finales2.example_parameters("cell_assembly", "autobass_assembly")["cell"]["battery_chemistry"][
        "electrolyte"
    ]
    flow = perform(instrument, "electrolyte", "flow", {"electrolyte": {"formulation": electrolyte}, "volume": 1.0})
    vial_uuid = flow["run_info"]["formulation_info"]["uuid"]
    params = assembly_request(finales2, cells=3)
    params["cell_info"]["electrolyte_info"]["uuid"] = vial_uuid
    result = perform(instrument, "cell_assembly", "autobass_assembly", params)
    vial = instrument.backend.electrolyte_batch(vial_uuid)
    assert vial.remaining_ml == pytest.approx(vial.volume_ml - 3 * 0.040, abs=1e-4)
    assert instrument.backend.vials_made == 1
    shelf = CellShelf(shelf_dir)
    for cell in result["batch_output"]:
        assert cell["cell_info"]["electrolyte_info"]["uuid"] == vial_uuid
        assert shelf.get(cell["cell_info"]["uuid"]).electrolyte_uuid == vial_uuid

    other = assembly_request(finales2, cells=1)
    other["cell"]["battery_chemistry"]["electrolyte"] = reference_electrolyte()
    other["cell_info"]["electrolyte_info"]["uuid"] = vial_uuid
    with pytest.raises(ParameterError) as caught:
        perform(instrument, "cell_assembly", "autobass_assembly", other)
    assert caught.value.field == "cell_info.electrolyte_info.uuid"


# -- the cells ---------------------------------------------------------------------------


def test_cells_land_on_the_shelf_for_another_process(finales2, shelf_dir):
    instrument = robot(shelf_dir, seed=5)
    result = perform(instrument, "cell_assembly", "autobass_assembly", assembly_request(finales2, cells=3))
    ids = sorted(c["cell_info"]["uuid"] for c in result["batch_output"])
    script = (
        "import sys; from labweave.drivers.cells import CellShelf; "
        "print(' '.join(sorted(CellShelf(sys.argv[1]).uuids())))"
    )
    listed = subprocess.run([sys.executable, "-c", script, str(shelf_dir)], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == ids
    record = CellShelf(shelf_dir).get(ids[0])
    assert record.batch_id == result["batch_id"] and not record.stand_in
    assert record.electrolyte_volume_ul == pytest.approx(35.0, rel=0.1)
    assert instrument.backend.cells_made == 3


def test_batches_get_distinct_ids_and_cells_are_counted(finales2, shelf_dir):
    instrument = robot(shelf_dir)
    first = perform(instrument, "cell_assembly", "autobass_assembly", assembly_request(finales2, cells=2))
    second = perform(instrument, "cell_assembly", "autobass_assembly", assembly_request(finales2, cells=3))
    assert first["batch_id"] != second["batch_id"]
    assert instrument.backend.cells_made == 5 and instrument.backend.cell_batches_made == 2


def _physical(record) -> dict:
    return record.model_dump(exclude={"uuid", "assembled_at", "electrolyte_uuid", "location", "history"})


def test_same_seed_makes_the_same_cells(finales2, tmp_path):
    made = []
    for run, seed in enumerate((7, 7, 8)):
        shelf = tmp_path / f"shelf{run}"
        instrument = robot(shelf, seed=seed)
        result = perform(instrument, "cell_assembly", "autobass_assembly", assembly_request(finales2, cells=4))
        records = [CellShelf(shelf).get(c["cell_info"]["uuid"]) for c in result["batch_output"]]
        made.append([_physical(r) | {"batch_id": None} for r in records])
    assert made[0] == made[1]
    assert made[0] != made[2]


def test_cells_vary_and_a_few_percent_are_defective(finales2, shelf_dir):
    parts = ("case", "spacer", "spring", "anode disc", "cathode disc", "separator Glasfiber")
    instrument = robot(shelf_dir, seed=11, parts={p: 1000 for p in parts})
    records = []
    for _ in range(6):
        result = perform(instrument, "cell_assembly", "autobass_assembly", assembly_request(finales2, cells=64))
        records += [CellShelf(shelf_dir).get(c["cell_info"]["uuid"]) for c in result["batch_output"]]
    volumes = np.array([r.electrolyte_volume_ul for r in records])
    offsets = np.array([r.alignment_offset_mm for r in records])
    crimps = np.array([r.crimp_pressure_mpa / r.nominal_crimp_pressure_mpa for r in records])
    assert 0.01 < volumes.std() / volumes.mean() < 0.03
    assert 0.1 < np.median(offsets) < 0.3
    assert 0.02 < crimps.std() < 0.06
    defective = [r for r in records if r.defects]
    assert 0.01 <= len(defective) / len(records) <= 0.12
    # the defects follow the assembly variations that cause them
    shorts = [r for r in records if r.has_defect("short")]
    leaks = [r for r in records if r.has_defect("leak")]
    assert shorts and leaks
    assert np.mean([r.crimp_pressure_mpa / r.nominal_crimp_pressure_mpa for r in leaks]) < crimps.mean() - 0.03


def test_failure_probabilities_follow_the_assembly_errors():
    assert short_probability(0.1, 0.5, 1.0) < 0.01
    assert short_probability(0.6, 0.5, 1.0) > 0.8
    assert short_probability(0.1, 0.5, 1.2) > 0.4
    assert leak_probability(1.0) < 0.01
    assert leak_probability(0.85) > 0.8
    assert leak_probability(0.95) < leak_probability(0.92) < leak_probability(0.90)


def test_undersized_anode_leaves_most_cells_shorted(finales2, shelf_dir):
    params = assembly_request(finales2, cells=20)
    params["cell"]["battery_chemistry"]["anode"]["size"] = 1.30  # smaller than the 1.54 cm2 cathode
    result = perform(robot(shelf_dir, seed=3), "cell_assembly", "autobass_assembly", params)
    shelf = CellShelf(shelf_dir)
    shorted = [c for c in result["batch_output"] if shelf.get(c["cell_info"]["uuid"]).has_defect("short")]
    assert len(shorted) >= 15
    assert all(not c["meta"]["success"] for c in result["batch_output"])


def assembly_with_its_vial(instrument, finales2, cells: int) -> dict:
    """Assembly parameters whose electrolyte the robot has just formulated (a vial on its deck)."""
    params = assembly_request(finales2, cells=cells)
    electrolyte = params["cell"]["battery_chemistry"]["electrolyte"]
    flow = perform(instrument, "electrolyte", "flow", {"electrolyte": {"formulation": electrolyte}, "volume": 1.0})
    params["cell_info"]["electrolyte_info"]["uuid"] = flow["run_info"]["internal_reference"]
    return params


def test_gripper_drop_is_a_retryable_fault(finales2, shelf_dir):
    instrument = robot(shelf_dir)
    params = assembly_with_its_vial(instrument, finales2, cells=2)
    instrument.backend.fault_rate = 1.0
    with pytest.raises(InstrumentFault) as caught:
        perform(instrument, "cell_assembly", "autobass_assembly", params)
    assert caught.value.retryable and "gripper" in str(caught.value)
    assert instrument.backend.parts["case"] == DEFAULT_PARTS["case"] - 1  # the dropped case is lost
    with pytest.raises(InstrumentFault) as caught:
        perform(
            instrument, "electrolyte", "flow", {"electrolyte": {"formulation": reference_electrolyte()}, "volume": 1.0}
        )
    assert caught.value.retryable


def test_a_stopped_robot_assembles_again_once_resumed(finales2, shelf_dir):
    instrument = robot(shelf_dir)
    params = assembly_with_its_vial(instrument, finales2, cells=2)
    asyncio.run(instrument.safe_stop())
    with pytest.raises(InstrumentStopped):  # stopped: nothing runs
        perform(instrument, "cell_assembly", "autobass_assembly", params)
    instrument.resume()  # an emergency stop or a lost lease is over: the robot is re-armed, not broken for good
    result = perform(instrument, "cell_assembly", "autobass_assembly", params)
    assert len(result["batch_output"]) == 2


def test_recipe_helper_gives_a_one_molar_electrolyte():
    formulation = formulation_from_recipe(1.0, {"EC": 3.0, "EMC": 7.0})
    assert sum(c.fraction for c in formulation) == pytest.approx(1.0, abs=1e-5)
    assert formulation[0].chemical.InChIKey == LIPF6
    assert formulation[0].fraction == pytest.approx(0.088, abs=0.003)
