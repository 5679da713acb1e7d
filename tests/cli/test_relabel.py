"""``labweave relabel``: small cells refused or read, and a real run through a lab of its own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ase.build import bulk
from ase.io import write
from typer.testing import CliRunner

from labweave.services.cli.main import app
from labweave.services.relabel import Cell, Computed, element_cell, read_cells, report

runner = CliRunner()


def test_elements_start_from_their_measured_cell():
    cell = element_cell("Cu")
    assert len(cell.atoms) == 1 and cell.element == "Cu"
    assert cell.atoms.get_volume() == pytest.approx(3.61**3 / 4)
    with pytest.raises(ValueError, match="not a chemical symbol"):
        element_cell("Xx")


def test_large_cells_and_bad_input_refused(tmp_path):
    big = tmp_path / "big.extxyz"
    write(big, bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 1, 1)))  # 12 atoms
    result = runner.invoke(app, ["relabel", str(big), "--user", "u", "--password", "p"])
    assert result.exit_code == 2 and "12 atoms" in result.output and "at most 10" in result.output
    result = runner.invoke(app, ["relabel", "Qq", "--user", "u", "--password", "p"])
    assert result.exit_code == 2 and "'Qq' is not a chemical symbol" in result.output
    result = runner.invoke(app, ["relabel", "Cu"])
    assert result.exit_code == 2 and "--embedded" in result.output


def test_every_frame_of_a_file_is_a_cell(tmp_path):
    path = tmp_path / "cells.extxyz"
    write(path, [bulk("Cu", "fcc", a=3.6), bulk("Al", "fcc", a=4.05)])
    cells = read_cells(path)
    assert [c.element for c in cells] == ["Cu", "Al"]


def test_report_compares_with_experiment():
    al = Cell("Al", bulk("Al", "fcc", a=4.05))
    lda = Computed(al, "LDA", "r1", {"lattice_constant": 3.98, "bulk_modulus": 84.0, "cost_cpu_seconds": 30.0,
                                     "dft": {"kpoints": [8, 8, 8]}})
    pbe = Computed(al, "PBE", "r2", error="the SCF did not converge")
    text = report([lda, pbe])
    assert "-1.7%" in text and "+16.3%" in text and "8x8x8" in text  # 3.98/4.05, 84/72.2
    assert "PBE  failed: the SCF did not converge" in text and "Kittel" in text


@pytest.mark.slow
def test_relabel_through_a_lab_of_its_own(tmp_path):
    out = tmp_path / "relabel.json"
    run = subprocess.run(
        [sys.executable, "-m", "labweave.services.cli.main", "relabel", "Al", "--cutoff", "200",
         "--kpoint-density", "1.0", "--smearing", "0.2", "--embedded", str(tmp_path / "lab"), "--out", str(out),
         "--timeout", "400"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads(out.read_text())
    assert [(r["cell"], r["xc"]) for r in rows] == [("Al", "LDA"), ("Al", "PBE")]
    lda, pbe = (r["data"] for r in rows)
    assert lda["lattice_constant"] < pbe["lattice_constant"] and lda["dft"]["xc"] == "LDA"
    assert "LDA: mean deviation from experiment over 1 elements" in run.stdout
