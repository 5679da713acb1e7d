"""Pareto fronts and hypervolumes of campaigns with several objectives, with BoTorch's tools.

Objectives are turned so that larger is better (minimised ones negated) and
handed to :func:`botorch.utils.multi_objective.pareto.is_non_dominated` and
:class:`~botorch.utils.multi_objective.box_decompositions.dominated.DominatedPartitioning`.
The hypervolume is the volume dominated by the results and bounded by a
reference point (Zitzler & Thiele, IEEE Trans. Evol. Comput. 3, 257 (1999)):
each objective's threshold, or where it has none, the worst value observed.

torch is imported when a front is first computed, not with this module: the
server's dashboard imports it and should not pay for torch until a campaign
with several objectives is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from labweave.schemas.campaign import Objective

from .observations import Observation

DIRECTIONS = ("maximize", "minimize")


def signs(directions: Sequence[str]) -> list[float]:
    """+1 for each objective to maximise, -1 for each to minimise.

    Raises:
        ValueError: naming ``directions[i]`` if one is neither ``maximize`` nor ``minimize``.
    """
    out = []
    for i, d in enumerate(directions):
        if d not in DIRECTIONS:
            raise ValueError(f"directions[{i}]: maximize or minimize, not {d!r}")
        out.append(1.0 if d == "maximize" else -1.0)
    return out


def _signed(points: Sequence[Sequence[float]], directions: Sequence[str]):
    import torch

    sign = signs(directions)
    for i, p in enumerate(points):
        if len(p) != len(sign):
            raise ValueError(f"points[{i}]: {len(p)} values for {len(sign)} objectives")
    if not points:
        return torch.zeros((0, len(sign)), dtype=torch.double)
    return torch.tensor(points, dtype=torch.double) * torch.tensor(sign, dtype=torch.double)


def pareto_mask(points: Sequence[Sequence[float]], directions: Sequence[str], *, deduplicate: bool = False
                ) -> list[bool]:
    """Which points no other point dominates (at least as good in every objective, better in one).

    Args:
        points: each point's objective values, in the order of ``directions``.
        directions: ``maximize`` or ``minimize`` per objective.
        deduplicate: flag only the first of equal points.

    Returns:
        One flag per point: True on the Pareto front.

    Raises:
        ValueError: naming ``points[i]`` or ``directions[i]`` where one is malformed.
    """
    from botorch.utils.multi_objective.pareto import is_non_dominated

    signed = _signed(points, directions)
    return [bool(flag) for flag in is_non_dominated(signed, deduplicate=deduplicate)]


def _scored(observations: Sequence[Observation], objectives: Sequence[Objective]) -> list[Observation]:
    """The observations that count and hold a value of every objective."""
    return [o for o in observations if o.counts and all(obj.name in o.values for obj in objectives)]


def pareto_front(observations: Sequence[Observation], objectives: Sequence[Objective]) -> list[Observation]:
    """The observations that count (feasible, at the target fidelity) that no other one dominates.

    Returns:
        The non-dominated observations, one per distinct point, sorted by the first objective.
    """
    scored = _scored(observations, objectives)
    points = [[o.values[obj.name] for obj in objectives] for o in scored]
    mask = pareto_mask(points, [obj.direction for obj in objectives], deduplicate=True)
    front = [o for o, keep in zip(scored, mask) if keep]
    return sorted(front, key=lambda o: o.values[objectives[0].name])


def reference_point(objectives: Sequence[Objective], observations: Sequence[Observation]) -> dict[str, float]:
    """Each objective's threshold, or where it has none, the worst value observed (in any run given).

    Args:
        objectives: the objectives.
        observations: the observations of every run to be compared.

    Returns:
        ``{objective: reference value}``.
    """
    ref = {}
    for o in objectives:
        if o.threshold is not None:
            ref[o.name] = o.threshold
            continue
        seen = [x.values[o.name] for x in observations if o.name in x.values] or [0.0]
        ref[o.name] = min(seen) if o.direction == "maximize" else max(seen)
    return ref


def hypervolume(observations: Sequence[Observation], objectives: Sequence[Objective],
                reference: Mapping[str, float]) -> float:
    """The volume dominated by the observations that count and bounded by the reference point.

    Args:
        observations: observations.
        objectives: the objectives (two or more).
        reference: the reference point, ``{objective: value}``.

    Returns:
        The hypervolume, in the product of the objectives' units (0 if no result beats the reference).
    """
    from botorch.utils.multi_objective.box_decompositions.dominated import DominatedPartitioning

    directions = [o.direction for o in objectives]
    scored = _scored(observations, objectives)
    if not scored:
        return 0.0
    ref = _signed([[reference[o.name] for o in objectives]], directions)[0]
    ys = _signed([[x.values[o.name] for o in objectives] for x in scored], directions)
    return float(DominatedPartitioning(ref_point=ref, Y=ys).compute_hypervolume())
