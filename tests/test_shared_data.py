"""Tests that read ../shared fail, naming what is missing, when it is not there (never skip, never pass
over nothing)."""

from __future__ import annotations

import re

import pytest

from . import conftest


@pytest.fixture
def no_shared(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "shared")
    return tmp_path / "shared"


def test_a_missing_file_or_folder_fails_the_test_naming_it(no_shared):
    with pytest.raises(pytest.fail.Exception, match=re.escape(f"test data missing: no {no_shared}/data/octet82.csv")):
        conftest.shared_path("data", "octet82.csv")
    folder = no_shared / "finales2" / "serialized_quantities"
    with pytest.raises(pytest.fail.Exception, match=re.escape(f"test data missing: no {folder} (")):
        conftest.shared_files("finales2", "serialized_quantities")


def test_a_folder_without_files_fails_the_test_naming_it(no_shared):
    (no_shared / "finales2" / "examples" / "requests").mkdir(parents=True)
    with pytest.raises(pytest.fail.Exception, match=r"no \*\.json under .*examples/requests"):
        conftest.shared_files("finales2", "examples", "requests")


def test_an_empty_parametrisation_becomes_one_failing_test(no_shared):
    [param] = conftest.shared_params("finales2", "examples", "results")
    assert param.id == "missing-data"
    [mark] = param.marks

    class Item:
        def get_closest_marker(self, name):
            return mark if name == mark.name else None

    with pytest.raises(pytest.fail.Exception, match=r"no \*\.json under .*finales2/examples/results"):
        conftest.pytest_runtest_setup(Item())


def test_the_data_present_is_found():
    files = conftest.shared_params("finales2", "examples", "requests")
    assert len(files) > 5 and files == conftest.shared_files("finales2", "examples", "requests")
    assert conftest.shared_path("data", "octet82.csv").is_file()
