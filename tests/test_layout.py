"""The import rules of the layout, read from the source of every module under ``app/``.

- only ``app.schema`` and ``app.main`` use the media feature (``app.media``) from outside it;
- ``app.providers`` reaches up into no feature (``app.media``, ``app.schema``, ``app.listing``);
- adapter modules (all of ``app.providers`` but the registry in its ``__init__``) import no
  settings: the registry builds them from plain values.

Every import counts, also one inside a function or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@dataclass(frozen=True)
class Rule:
    name: str
    applies: Callable[[str], bool]
    forbidden: tuple[str, ...]


RULES = [
    Rule(
        "only app.schema and app.main use app.media",
        lambda m: not any(within(m, p) for p in ("app.media", "app.schema", "app.main")),
        ("app.media",),
    ),
    Rule(
        "app.providers reaches up into no feature",
        lambda m: within(m, "app.providers"),
        ("app.media", "app.schema", "app.listing"),
    ),
    Rule(
        "adapter modules import no settings",
        lambda m: within(m, "app.providers") and m != "app.providers",
        ("app.settings",),
    ),
]


def app_sources() -> dict[str, str]:
    """Path (``app/providers/base.py``) -> source of every module under ``app/``."""
    root = APP.parent
    return {path.relative_to(root).as_posix(): path.read_text() for path in APP.rglob("*.py")}


def module_of(path: str) -> tuple[str, str]:
    """The module a path holds, and the package its relative imports start from."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def imported(path: str, source: str) -> Iterator[str]:
    """Every module name ``source`` may import, ``from a import b`` giving ``a`` and ``a.b``."""
    _, package = module_of(path)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            origin = node.module or ""
            if node.level:  # relative: ``level - 1`` packages up from this one
                anchor = package.split(".")[: package.count(".") + 2 - node.level]
                origin = ".".join([*anchor, origin]).rstrip(".")
            yield origin
            yield from (f"{origin}.{alias.name}" for alias in node.names)


def violations(rule: Rule, sources: Mapping[str, str]) -> list[str]:
    found = set()
    for path, source in sources.items():
        module, _ = module_of(path)
        if rule.applies(module):
            for name in imported(path, source):
                if any(within(name, forbidden) for forbidden in rule.forbidden):
                    found.add(f"{module} imports {name}")
    return sorted(found)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_app_keeps_the_import_rules(rule: Rule) -> None:
    sources = app_sources()
    assert "app/providers/__init__.py" in sources and len(sources) > 40
    assert violations(rule, sources) == []


@pytest.mark.parametrize(
    ("path", "source", "broken"),
    [
        ("app/recordings.py", "from app.media.links import MediaLinks", 0),
        ("app/cli.py", "def f():\n    import app.media.proxy", 0),
        ("app/listing/merge.py", "from app import media", 0),
        ("app/listing/merge.py", "from ..media import links", 0),
        ("app/providers/twilio.py", "from app.schema import types", 1),
        ("app/providers/__init__.py", "from app.listing.merge import walk", 1),
        ("app/providers/__init__.py", "from ..media.ranges import cut", 1),
        ("app/providers/base.py", "from ..media import ranges", 1),
        ("app/providers/bird.py", "from app.settings import BirdSettings", 2),
        ("app/providers/laml.py", "if TYPE_CHECKING:\n    from app import settings", 2),
        ("app/providers/signalwire.py", "from .. import settings", 2),
        ("app/providers/signalwire.py", "import app.settings as config", 2),
    ],
)
def test_a_forbidden_import_is_found(path: str, source: str, broken: int) -> None:
    """The checker sees each way of writing an import (else the test above proves nothing)."""
    assert violations(RULES[broken], {path: source}), source


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("app/main.py", "from app.media.proxy import MediaRoute"),
        ("app/schema/types.py", "from ..media import links"),
        ("app/media/proxy.py", "from app.media.ranges import cut"),
        ("app/providers/__init__.py", "from app.settings import Settings"),
        ("app/providers/twilio.py", "from .laml import LamlProvider"),
    ],
)
def test_an_allowed_import_passes(path: str, source: str) -> None:
    assert [violations(rule, {path: source}) for rule in RULES] == [[], [], []]
