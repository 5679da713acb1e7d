"""Study: SISSO on the octet82 data set against the SISSO++ reference (``python -m benchmarks.sisso_octet``).

Settings are those of the SISSO++ tutorial (Purcell et al., J. Chem. Phys.
159, 114110 (2023)): ``max_rung`` 2, ``n_sis_select`` 10, ``n_residual`` 10,
operators ``+ - |-| * /`` and the usual unary set, unit-aware. The reference
training RMSEs (eV) are those printed by SISSO++ for dimensions 1-4.

Run ``python -m benchmarks.sisso_octet [path/to/octet82.csv]`` from the root of
a clone (by default the file is ``../shared/data/octet82.csv``); each dimension's
model is written to standard output as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from labweave.optimizer.sisso.model import SissoRegressor, SissoSettings
from benchmarks.octet82 import load_octet82

__all__ = ["OCTET82_SETTINGS", "OCTET82_REFERENCE", "run_benchmarks", "main"]

logger = logging.getLogger(__name__)

#: SISSO++ tutorial settings for octet82
OCTET82_SETTINGS = SissoSettings(max_rung=2, n_sis_select=10, n_residual=10, max_dimension=4)

#: SISSO++ reference: dimension -> (training RMSE in eV, descriptor features in postfix form)
OCTET82_REFERENCE: dict[int, tuple[float, tuple[str, ...]]] = {
    1: (0.125912, ("E_HOMO_B|r_p_A|div|r_sigma|r_p_B|add|div",)),
    2: (0.0931541, ("E_HOMO_B|r_p_A|div|r_sigma|r_p_B|add|div", "EA_B|IP_A|sub|r_sigma|r_s_B|abs_diff|mult")),
    3: (
        0.0725522,
        (
            "E_HOMO_B|r_p_A|div|r_sigma|r_p_B|add|div",
            "EA_B|IP_A|abs_diff|r_sigma|r_s_B|abs_diff|mult",
            "r_d_B|Z_A|mult|r_p_B|r_s_B|abs_diff|div",
        ),
    ),
    4: (
        0.0588116,
        (
            "E_HOMO_B|r_p_A|div|r_sigma|r_p_B|add|div",
            "EA_B|IP_A|sub|r_sigma|r_s_B|abs_diff|mult",
            "period_B|period_A|abs_diff|r_pi|EA_B|mult|div",
            "E_LUMO_A|EA_A|div|r_p_B|six_pow|div",
        ),
    ),
}


def run_benchmarks(csv_path: str | os.PathLike | None = None, max_dimension: int = 4) -> list[dict[str, Any]]:
    """Fit SISSO to octet82 and report each dimension's model.

    Args:
        csv_path: path of ``octet82.csv``; by default found as
            :func:`benchmarks.octet82.find_octet82` does.
        max_dimension: the largest descriptor dimension (1-4 have references).

    Returns:
        One dict per dimension: ``problem``, ``strategy``, ``dimension``,
        ``rmse`` (training, eV), ``descriptor`` (features separated by ``"; "``),
        ``seconds`` (wall time from the start of the fit until this dimension's
        model was found, feature construction included), ``formula`` and
        ``reference_rmse`` (SISSO++, ``None`` beyond dimension 4).
    """
    data = load_octet82(csv_path)
    settings = OCTET82_SETTINGS.model_copy(update={"max_dimension": max_dimension})
    regressor = SissoRegressor(settings).fit(
        data.X,
        data.y,
        data.feature_names,
        data.units,
        target_name="dE",
        target_unit="eV",
    )
    results = []
    for dimension, (model, seconds) in enumerate(zip(regressor.models_, regressor.seconds_), start=1):
        reference = OCTET82_REFERENCE.get(dimension)
        results.append(
            {
                "problem": "octet82",
                "strategy": "sisso",
                "dimension": dimension,
                "rmse": model.rmse,
                "descriptor": model.descriptor,
                "seconds": round(seconds, 3),
                "formula": model.formula(),
                "reference_rmse": reference[0] if reference else None,
            }
        )
        logger.info(
            "octet82 dimension %d: RMSE %.6g eV (SISSO++ %s) in %.1f s",
            dimension,
            model.rmse,
            reference[0] if reference else "-",
            seconds,
        )
    return results


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: run the study and print one JSON line per dimension.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sisso_octet", description=__doc__.splitlines()[0])
    parser.add_argument("csv_path", nargs="?", default=None, help="path of octet82.csv")
    parser.add_argument("--max-dimension", type=int, default=4, help="the largest descriptor dimension")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if args.max_dimension < 1:
        parser.error(f"--max-dimension: at least 1, not {args.max_dimension}")
    try:
        results = run_benchmarks(args.csv_path, args.max_dimension)
    except FileNotFoundError as error:
        parser.error(str(error))
    for row in results:
        sys.stdout.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
