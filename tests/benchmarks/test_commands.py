"""The studies run from a clone with one command each, and the product never imports them."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from ..conftest import REPO

STUDIES = ("optimizer", "fidelity", "alloy_study", "sisso_octet", "pld", "mlip_finetune")
PRODUCT = ("schemas", "services", "drivers", "optimizer")


@pytest.mark.parametrize("study", STUDIES)
def test_each_study_runs_from_the_clone_with_one_command(study):
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{study}", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m benchmarks.{study}")


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args \
                and isinstance(node.args[0], ast.Constant):
            names.add(node.args[0].value)
    return names


def test_no_product_module_imports_a_study():
    files = [path for package in PRODUCT for path in sorted((REPO / package).rglob("*.py"))]
    assert len(files) > 100
    studies = {str(path.relative_to(REPO)): sorted(name for name in imported_modules(path)
                                                    if name == "benchmarks" or name.startswith("benchmarks."))
               for path in files}
    assert {path: names for path, names in studies.items() if names} == {}
