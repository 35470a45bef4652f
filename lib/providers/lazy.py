"""Package attributes imported on first access (PEP 562), for the provider packages.

Each provider package exports its ``SPEC`` at once (routing and the model list read it at start-up)
and its provider class only when asked for, so that reading the specs does not import the SDKs
(openai, boto3, llama.cpp); ``tests/ship/test_lazy_imports.py`` holds the packages to that.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


def lazy_exports(package: str, module: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``names`` from ``module`` when first
    asked for; any other name is an ``AttributeError`` as for a module without one."""
    exported = frozenset(names)

    def getattr_(name: str) -> Any:
        if name in exported:
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return getattr_
