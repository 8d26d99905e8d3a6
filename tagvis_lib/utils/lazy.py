"""Public names of a package that are imported from their modules on first use (PEP 562).

A package ``__init__`` declares, per submodule, the names it re-exports::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {
        ".davis": ["DAVISDataset", "read_palette_png"],
        ".synth": ["CATEGORIES as SYNTH_CATEGORIES", "write_benchmark"],
    })

``import package`` then loads none of those submodules; ``package.DAVISDataset`` (or ``from package
import DAVISDataset``) imports ``.davis`` once and keeps the value in the package's namespace. Any
other submodule is an attribute too (``package.davis``), imported on first access.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, Callable, Iterable, Mapping


def _parse(spec: str) -> tuple[str, str]:
    """``"attr"`` or ``"attr as alias"`` -> (attribute in its module, public name)."""
    attr, _, alias = (part.strip() for part in spec.partition(" as "))
    return attr, alias or attr


def lazy_exports(package: str, exports: Mapping[str, Iterable[str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for package ``package`` (its ``__name__``).

    exports: relative module name (``".config"``) -> the names it provides, each ``"attr"`` or
    ``"attr as alias"``. A public name listed twice is an error.
    """
    where: dict[str, tuple[str, str]] = {}  # public name -> (module, attribute)
    for module, specs in exports.items():
        for spec in specs:
            attr, name = _parse(spec)
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported twice")
            where[name] = (module, attr)
    public = sorted(where)

    def __getattr__(name: str) -> Any:
        if name in where:
            module, attr = where[name]
            value = getattr(importlib.import_module(module, package), attr)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")  # a submodule, as after its import
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__, public
