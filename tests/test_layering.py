"""Layering: the pure core never imports I/O or face libraries (DESIGN.md, STYLE.md).

Walks the AST of every .py file of ``habilitation/`` and ``espace/`` (imports inside functions
and ``TYPE_CHECKING`` blocks included) and fails on a forbidden top-level package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_EVERYWHERE = frozenset(
    {"flask", "werkzeug", "lxml", "fhir", "smtplib", "aiosmtpd", "zeep"}
)
RULES = {
    "habilitation": FORBIDDEN_EVERYWHERE | {"sqlalchemy"},
    "espace": FORBIDDEN_EVERYWHERE,
}


def imported_packages(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def violations(package: str, forbidden: frozenset[str], root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for module in sorted(imported_packages(tree)):
            top = module.split(".")[0]
            if top in forbidden or module.startswith("fhir.resources"):
                out.append(f"{path.relative_to(root)} imports {module}")
    return out


@pytest.mark.parametrize(("package", "forbidden"), sorted(RULES.items()))
def test_core_packages_do_not_import_io_or_faces(package: str, forbidden: frozenset[str]) -> None:
    if not (ROOT / package).is_dir():
        pytest.skip(f"{package}/ does not exist yet")
    assert violations(package, forbidden) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import flask", {"flask"}),
        ("from lxml import etree", {"lxml"}),
        ("def f():\n    import smtplib", {"smtplib"}),
        ("from fhir.resources.R4B import patient", {"fhir.resources.R4B"}),
        ("import importlib\nimportlib.import_module('zeep')", {"importlib", "zeep"}),
        ("from . import model", set()),
    ],
)
def test_the_import_walker_sees_every_form(source: str, expected: set[str]) -> None:
    assert imported_packages(ast.parse(source)) == expected


def test_a_forbidden_import_is_reported(tmp_path: Path) -> None:
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "x.py").write_text("from sqlalchemy import select\n", encoding="utf-8")
    assert violations("fake", RULES["habilitation"], tmp_path) == ["fake/x.py imports sqlalchemy"]
    assert violations("fake", RULES["espace"], tmp_path) == []
