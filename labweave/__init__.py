"""labweave: a self-driving materials lab.

The parts live in the repository's root folders (``schemas/``, ``services/``,
``drivers/``, ``optimizer/``); this package links them under one import name so
that an editable install, editors and type checkers all resolve ``labweave.*``
to the same files a wheel ships.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("labweave")
except PackageNotFoundError:  # running from a clone that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
