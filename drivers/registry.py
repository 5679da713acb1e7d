"""Backends by name: the ``labweave.backends`` entry points of every installed package.

An instrument's backends (the simulated one, and real ones from any package)
are Python entry points in the group :data:`GROUP`, named
``<instrument>.<backend>`` and pointing to a :class:`~labweave.drivers.base.Backend`
subclass. labweave registers its simulated backends in its own ``pyproject.toml``::

    [project.entry-points."labweave.backends"]
    cycler.simulated = "labweave.drivers.cycler.sim:SimulatedCyclerBackend"

and a package driving a real cycler adds one the same way, without touching
labweave (``cycler.arbin = "labweave_arbin.cycler:ArbinCyclerBackend"``).
The instrument part is a name of the tenant catalogue (``pld``, ``robot``,
``cycler``, ``emt``, ``chgnet``); the backend part is what ``labweave tenant
run INSTRUMENT --backend NAME`` takes, :data:`DEFAULT` when none is given
(or, for an instrument that has no simulated backend, such as ``dft.gpaw``,
its only one).

A backend declares its options as a pydantic model
(:attr:`~labweave.drivers.base.Backend.settings_model`), validated here
from ``KEY=VALUE`` text before the backend is built, and builds itself with
:meth:`~labweave.drivers.base.Backend.from_settings`. Listing the backends
reads the packages' metadata only; a backend's module is imported when it is
chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from pydantic import ValidationError

from labweave.drivers.base import Backend, BackendContext, BackendSettings

log = logging.getLogger(__name__)

#: The entry-point group of backends.
GROUP = "labweave.backends"
#: The backend used when none is named.
DEFAULT = "simulated"


class BackendNotFound(ValueError):
    """No backend of that name is installed for the instrument; the message lists those that are."""


class BackendUnusable(ValueError):
    """A backend is registered but cannot be loaded or built (bad options, a broken package)."""


@dataclass(frozen=True)
class RegisteredBackend:
    """One entry point of :data:`GROUP`.

    Attributes:
        instrument: the catalogue name of the instrument (``cycler``).
        name: the backend's name (``simulated``, ``tomato``).
        target: where the class is (``package.module:Class``).
        package: the distribution that registers it.
    """

    instrument: str
    name: str
    target: str
    package: str

    @property
    def label(self) -> str:
        return f"{self.instrument}.{self.name}"

    def load(self) -> type[Backend]:
        """The backend class (imports its module).

        Raises:
            BackendUnusable: the module does not import, or the target is not a Backend subclass.
        """
        where = f"{self.label} ({self.target}, from {self.package})"
        try:
            loaded = EntryPoint(name=self.label, value=self.target, group=GROUP).load()
        except Exception as exc:  # a broken third-party package is reported, not a traceback
            raise BackendUnusable(f"backend {where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if not (isinstance(loaded, type) and issubclass(loaded, Backend)):
            raise BackendUnusable(f"backend {where} is not a subclass of labweave's Backend")
        return loaded


def _entries() -> dict[str, dict[str, list[RegisteredBackend]]]:
    """Every entry point of the group: instrument -> backend name -> its registrations."""
    out: dict[str, dict[str, list[RegisteredBackend]]] = {}
    for point in entry_points(group=GROUP):
        instrument, dot, name = point.name.partition(".")
        if not (instrument and dot and name):
            log.warning("entry point %r of %s is not named <instrument>.<backend>; skipped", point.name, GROUP)
            continue
        package = point.dist.name if point.dist is not None else "an unknown package"
        entry = RegisteredBackend(instrument, name, point.value, package)
        same = out.setdefault(instrument, {}).setdefault(name, [])
        if all(e.target != entry.target for e in same):
            same.append(entry)
    return out


def registered() -> dict[str, dict[str, RegisteredBackend]]:
    """Every installed backend: instrument -> backend name -> its entry (the first, if registered twice)."""
    return {instrument: {name: found[0] for name, found in sorted(names.items())}
            for instrument, names in sorted(_entries().items())}


def backend_names(instrument: str) -> list[str]:
    """The names of the instrument's installed backends, sorted."""
    return sorted(_entries().get(instrument, {}))


def find(instrument: str, name: str = DEFAULT) -> RegisteredBackend:
    """The registered backend ``name`` of ``instrument``.

    Raises:
        BackendNotFound: none of that name, listing the instrument's backends.
        BackendUnusable: two packages register that name for different classes.
    """
    available = _entries().get(instrument, {})
    found = available.get(name)
    if not found and name == DEFAULT and len(available) == 1:  # no simulated one (dft): its only backend
        found = next(iter(available.values()))
    if not found:
        if available:
            raise BackendNotFound(
                f"no backend {name!r} for the {instrument}; installed: {', '.join(sorted(available))}"
            )
        raise BackendNotFound(
            f"no backend {name!r} for the {instrument}: none of its backends is installed "
            f"(entry points of {GROUP} named {instrument}.NAME; is labweave installed with pip?)"
        )
    if len(found) > 1:
        both = " and ".join(f"{e.package} ({e.target})" for e in found)
        raise BackendUnusable(f"backend {found[0].label} is registered by {both}; uninstall one of them")
    return found[0]


def settings_for(backend: type[Backend], options: Mapping[str, object], label: str) -> BackendSettings:
    """Validate a backend's options with its own settings model.

    Args:
        backend: the backend class.
        options: option name -> value (text from the command line is coerced by the model).
        label: how to name the backend in errors (``cycler.simulated``).

    Raises:
        BackendUnusable: naming the first bad option and why, or listing the options there are.
    """
    model = backend.settings_model
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        first = exc.errors()[0]
        option = ".".join(str(p) for p in first["loc"]) or "options"
        if first["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields) or "none"
            raise BackendUnusable(f"backend {label} has no option {option!r} (its options: {known})") from None
        raise BackendUnusable(f"backend {label}: option {option}: {first['msg']}") from None


def create(instrument: str, name: str = DEFAULT, options: Mapping[str, object] | None = None,
           context: BackendContext | None = None) -> Backend:
    """Build the backend ``name`` of ``instrument`` with its options.

    Raises:
        BackendNotFound: no such backend (the message lists the installed ones).
        BackendUnusable: it cannot be loaded, an option is bad, or building it failed.
    """
    entry = find(instrument, name)
    backend = entry.load()
    settings = settings_for(backend, options or {}, entry.label)
    try:
        return backend.from_settings(settings, context or BackendContext())
    except ValueError as exc:
        raise BackendUnusable(f"backend {entry.label}: {exc}") from exc
