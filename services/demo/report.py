"""The demo's report: PNG figures, one self-contained HTML page, and the numbers as JSON.

``DIR/report.html`` embeds its figures (base64), so the page alone can be
mailed or archived; the same figures are in ``DIR/*.png`` and the numbers
behind the summary in ``DIR/summary.json``. Each run's data is exported as
``labweave export`` does it: ``DIR/data/CAMPAIGN.csv`` (the campaign frame)
and ``DIR/data/CAMPAIGN-crate/`` (an RO-Crate), linked from the page.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labweave.optimizer import analytics
from labweave.optimizer.campaign import Campaign
from labweave.schemas.api import CampaignRecord
from labweave.services.export.bundle import CampaignData
from labweave.services.export.crate import pack_crate
from labweave.services.export.files import write_frame

from . import analysis, figures, symbolic
from .campaigns import DemoCampaign
from .runs import CampaignRun, DemoResult

log = logging.getLogger(__name__)


@dataclass
class CampaignReport:
    """One demo campaign in the report.

    Args:
        key: the demo campaign's key.
        title: its title.
        optimised: the score of the campaign's own strategy.
        baseline: the score of the random baseline.
        reference: the hypervolume reference point (several objectives).
        calibration: the model's prediction statistics, by objective.
        formulas: SISSO formulas fitted to the results of both runs (one line each).
        strategy_formulas: formulas the campaign's strategy reported itself.
        figures: the PNG files drawn for it.
        exports: per run, its campaign name, its table (CSV) and its RO-Crate folder.
    """

    key: str
    title: str
    optimised: analysis.Score
    baseline: analysis.Score
    reference: dict[str, float] | None
    calibration: dict[str, analytics.Calibration]
    formulas: list[str]
    strategy_formulas: list[str]
    figures: list[Path] = field(default_factory=list)
    #: each run's exported table and RO-Crate, relative to the report's folder
    exports: list[tuple[str, Path, Path]] = field(default_factory=list)

    @property
    def winner(self) -> str | None:
        return analysis.winner(self.optimised, self.baseline)

    @property
    def better(self) -> str:
        """Which did better: the strategy's name, ``random baseline`` or ``tie`` (``within noise`` where
        the replicates cannot tell the two apart)."""
        if self.winner is None:
            return "tie (within noise)" if analysis.within_noise(self.optimised, self.baseline) else "tie"
        return self.optimised.strategy if self.winner == self.optimised.name else "random baseline"


def analyse(demo: DemoCampaign, optimised: CampaignRun, baseline: CampaignRun, out: Path) -> CampaignReport:
    """Score a campaign against its baseline and draw its figures into ``out``.

    Args:
        demo: the demo campaign.
        optimised: its run with its own strategy.
        baseline: its random-search run.
        out: the report's folder.

    Returns:
        The campaign's part of the report.
    """
    key, campaign = demo.recipe.key, optimised.campaign
    compared = analysis.compare(optimised, baseline)
    own, theirs = compared.terms
    reference = compared.reference
    preds = analytics.predictions(own, optimised.observations(own))
    calibration = {name: c for name, p in preds.items() if (c := analytics.calibration(p)) is not None}
    part = CampaignReport(key, demo.recipe.title, compared.optimised, compared.baseline, reference, calibration,
                          _sisso(campaign, optimised, baseline),
                          analytics.formula_lines(optimised.state.get("formulas")))
    part.figures.append(figures.progress_figure(
        out / f"{key}-progress.png", f"{campaign.spec.name}: {campaign.spec.strategy.name} against random search",
        analysis.trace(optimised, own, reference), analysis.trace(baseline, theirs, reference)))
    if reference is not None:
        part.figures.append(figures.pareto_figure(out / f"{key}-pareto.png", campaign,
                                                  optimised.observations(own), baseline.observations(theirs),
                                                  reference))
    if preds:
        part.figures.append(figures.predictions_figure(
            out / f"{key}-predictions.png", f"{campaign.spec.name}: the model's predictions against the measurements",
            campaign.spec.strategy.name, preds))
    return part


def _sisso(campaign: Campaign, optimised: CampaignRun, baseline: CampaignRun) -> list[str]:
    """SISSO formulas over both runs' results, one set per method where several methods measured."""
    obs = optimised.observations() + baseline.observations()
    methods = sorted({o.method for o in obs})
    lines = []
    for method in methods:
        chosen = [o for o in obs if o.method == method]
        for formula in symbolic.fit_formulas(campaign.spec.space, campaign.spec.objectives, chosen):
            lines.append((f"[{method}] " if len(methods) > 1 else "") + formula.describe())
    return lines


def write_report(result: DemoResult) -> tuple[Path, list[CampaignReport]]:
    """Write the figures, ``report.html`` and ``summary.json`` into the demo's output folder.

    Args:
        result: a finished demo run.

    Returns:
        The HTML file and the campaigns' parts.
    """
    out = result.options.out
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for demo in result.campaigns:
        if demo.recipe.key in result.runs:
            optimised, baseline = result.runs[demo.recipe.key]
            part = analyse(demo, optimised, baseline, out)
            part.exports = [export_run(run, out) for run in (optimised, baseline)]
            parts.append(part)
    page = out / "report.html"
    page.write_text(_html(result, parts), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(_summary(result, parts), indent=2, default=str), encoding="utf-8")
    log.info("wrote %s", page)
    return page, parts


def export_run(run: CampaignRun, out: Path) -> tuple[str, Path, Path]:
    """Write a run as ``labweave export`` would: ``data/NAME.csv`` and the RO-Crate ``data/NAME-crate/``.

    Returns:
        The campaign's name, the table and the crate, relative to ``out``.
    """
    name = run.campaign.spec.name
    data = CampaignData(CampaignRecord.model_validate(run.record), run.requests, run.results, run.tenants)
    table = write_frame(data.frame(), out / "data" / f"{name}.csv", "csv")
    crate = pack_crate(data, out / "data" / f"{name}-crate")
    return name, table.relative_to(out), crate.relative_to(out)


def _summary(result: DemoResult, parts: list[CampaignReport]) -> dict[str, Any]:
    return {
        "seconds": round(result.seconds, 1),
        "seed": result.options.seed,
        "database_url": result.database_url,
        "left_out": result.left_out,
        "campaigns": {p.key: {"title": p.title, "optimised": asdict(p.optimised), "baseline": asdict(p.baseline),
                              "winner": p.winner, "reference": p.reference,
                              "calibration": {name: asdict(c) for name, c in p.calibration.items()},
                              "formulas": p.formulas, "strategy_formulas": p.strategy_formulas,
                              "figures": [f.name for f in p.figures],
                              "exports": {name: {"table": str(table), "crate": str(crate)}
                                          for name, table, crate in p.exports}}
                      for p in parts},
    }


# ------------------------------------------------------------------------- HTML
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1d2330; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
     border-bottom: 1px solid #d7dbe3; padding-bottom: .3rem; }
.facts { color: #566; font-size: .9rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #d7dbe3; padding: .35rem .6rem; text-align: left; vertical-align: top; }
th { background: #f2f4f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.win { font-weight: 600; color: #14632e; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
.figures img { max-width: 100%; border: 1px solid #e3e6ec; }
.figures figure { margin: 0; flex: 1 1 420px; } figcaption { font-size: .85rem; color: #566; }
code, pre { background: #f5f6f9; padding: .1rem .3rem; border-radius: 3px; }
.note { background: #fff7e6; border-left: 4px solid #e0a030; padding: .5rem .8rem; }
"""

CAPTIONS = {
    "progress": "Best so far against experiments (or cost, or hypervolume with several objectives); dots are "
                "single results.",
    "pareto": "Every result in the plane of the two objectives, each run's Pareto front as a staircase; "
              "the cross is the hypervolume's reference point (the objectives' thresholds).",
    "predictions": "Before each model-made experiment the model predicted a mean and a standard deviation; "
                   "bars are two standard deviations.",
}


def _e(value: Any) -> str:
    return html.escape(str(value))


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    kind = path.stem.rsplit("-", 1)[-1]
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(path.name)}">'
            f"<figcaption>{_e(path.name)}: {_e(CAPTIONS.get(kind, ''))}</figcaption></figure>")


def _score_rows(part: CampaignReport, with_cost: bool) -> str:
    rows = []
    for score, role in ((part.optimised, "campaign"), (part.baseline, "random baseline")):
        win = ' class="win"' if part.winner == score.name else ""
        params = analysis.fmt_point(score.best_parameters)
        rows.append(
            f"<tr><td>{_e(score.name)}<br><small>{role}</small></td><td>{_e(score.strategy)}</td>"
            f'<td class="num">{score.experiments}</td><td class="num">{score.failed}</td>'
            + (f'<td class="num">{analysis.fmt(score.cost)}</td>' if with_cost else "") +
            f"<td{win}>{_e(score.headline)}</td><td><small>{_e(params)}</small></td></tr>")
    return "".join(rows)


def _leaves(node: dict, prefix: str = "") -> list[tuple[str, object]]:
    """``(dotted path, value)`` of every non-object value in a nested dict."""
    out: list[tuple[str, object]] = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        out += _leaves(value, path + ".") if isinstance(value, dict) else [(path, value)]
    return out


def _part(part: CampaignReport, demo: DemoCampaign, replicates: int) -> str:
    spec = demo.optimised.spec
    with_cost = part.optimised.cost is not None
    fixed = ", ".join(f"{k} = {v}" for k, v in demo.recipe.fixed.items())
    overrides = ", ".join(f"{method} {path} = {value}" for method, changes in demo.recipe.request_overrides.items()
                          for path, value in _leaves(changes))
    lines = [f"<h2>{_e(part.title)}</h2>",
             f"<p>{_e(spec.description)} Demo size: {spec.budget} requests per run at most, {spec.initial_design} "
             f"space-filling points first, batches of {spec.batch_size}"
             + (f"; fixed for the demo: {_e(fixed)}" if fixed else "")
             + (f"; request parameters set for the demo: {_e(overrides)}" if overrides else "") + ".</p>",
             "<table><tr><th>run</th><th>strategy</th><th>results</th><th>failed</th>"
             + ("<th>cost</th>" if with_cost else "") + "<th>outcome</th><th>best found at</th></tr>",
             _score_rows(part, with_cost), "</table>"]
    terms = analytics.CampaignTerms.of(spec)
    ladder = terms.ladder
    if ladder is not None:
        costs = {f.method: f.cost for f in ladder.fidelities}
        target = ladder.target.method
        pooled = demo.baseline.spec.strategy.settings.get("pool") is not None
        lines.append(f"<p>Costs per evaluation: {_e(', '.join(f'{m} {c:g}' for m, c in costs.items()))}; the "
                     f"campaign may spend {analysis.fmt(terms.cost_budget)}. The best value counts "
                     f"{_e(target)} results only. The baseline draws "
                     + ("candidates of the same pool at random, none twice, " if pooled
                        else "random points of the whole search space ")
                     + f"and evaluates each with {_e(target)}, {demo.baseline.spec.budget} times, for the same "
                     "cost.</p>")
    if replicates:
        counts = f"{part.optimised.replicates} and {part.baseline.replicates}"
        lines.append(f"<p>Single measurements on this instrument scatter (cells built from one electrolyte "
                     f"differ by a few cycles), so the best single result of a run is partly luck. Once each "
                     f"run ended, the point its strategy recommends was measured {replicates} times "
                     f"more ({counts} usable): for random search its best single result, for the Bayesian "
                     f"strategy the measured point with the best posterior mean, which pools neighbouring "
                     f"measurements. The runs are compared on those replicates' mean.</p>"
                     + "".join(f"<p>{_e(run.name)} recommended {_e(analysis.fmt_point(run.replicated_parameters))}.</p>"
                               for run in (part.optimised, part.baseline) if run.replicated_parameters))
    for objective, c in part.calibration.items():
        lines.append(f"<p>The model's predictions of {_e(objective)} for {c.n} experiments: RMSE "
                     f"{analysis.fmt(c.rmse)}, {100 * c.within_2_sigma:.0f}% of the measurements within two "
                     "standard deviations (about 95% for calibrated uncertainties).</p>")
    if part.formulas:
        lines.append("<p>Formulas found by symbolic regression (SISSO) over the results of both runs, "
                     "the dimension chosen by cross-validation (descriptive: a dozen or two results):</p><ul>"
                     + "".join(f"<li><code>{_e(f)}</code></li>" for f in part.formulas) + "</ul>")
    if part.strategy_formulas:
        lines.append(f"<p>Formulas the {_e(part.optimised.strategy)} strategy reported:</p><ul>"
                     + "".join(f"<li><code>{_e(f)}</code></li>" for f in part.strategy_formulas) + "</ul>")
    if part.exports:
        lines.append("<p>The runs' data (one row per request: parameters, provenance, result, objectives) and "
                     "RO-Crates to archive them: "
                     + "; ".join(f'{_e(name)}: <a href="{_e(table.as_posix())}">table (CSV)</a>, '
                                 f'<a href="{_e((crate / "ro-crate-metadata.json").as_posix())}">RO-Crate</a>'
                                 for name, table, crate in part.exports) + ".</p>")
    lines.append('<div class="figures">' + "".join(_img(f) for f in part.figures) + "</div>")
    return "\n".join(lines)


def _html(result: DemoResult, parts: list[CampaignReport]) -> str:
    demos = {d.recipe.key: d for d in result.campaigns}
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    overview = "".join(
        f"<tr><td>{_e(p.title)}</td><td>{_e(p.optimised.strategy)}: {_e(p.optimised.headline)}</td>"
        f"<td>{_e(p.baseline.headline)}</td><td>{_e(p.better)}</td></tr>" for p in parts)
    left_out = "".join(f'<p class="note">Left out: {_e(r)}</p>' for r in result.left_out)
    body = [
        "<h1>labweave demo: a simulated self-driving lab</h1>",
        f'<p class="facts">{when} &middot; seed {result.options.seed} &middot; {result.seconds / 60:.1f} min '
        f"&middot; database <code>{_e(result.database_url)}</code></p>",
        "<p>The intention server, the simulated instruments (each a tenant process claiming requests) and the "
        "optimizer daemons ran closed-loop campaigns. Each campaign ran twice on the same instruments: with its "
        "own strategy and with random search as the baseline.</p>",
        left_out,
        "<table><tr><th>campaign</th><th>strategy</th><th>random baseline</th><th>better</th></tr>"
        + overview + "</table>",
        *(_part(p, demos[p.key], result.options.replicates_of(demos[p.key].recipe)) for p in parts),
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>labweave demo report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
