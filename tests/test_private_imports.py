"""No module of `server/tether` uses another package's private (`_`-prefixed) names.

A package's public surface is what other packages may build on; its `_` names may change
without notice. import-linter's contracts speak of modules, not names, so this walks the AST:
a `_name` imported (`from tether.x.y import _name`, relative imports included) or read as an
attribute of an imported module (`y._name`) must belong to the importer's own package (the
package a module sits in; a package's `__init__` belongs to it).
"""

from __future__ import annotations

import ast
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "server"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    """(dotted module name, is a package) of a file below `root`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _owner(module: str, modules: dict[str, bool]) -> str:
    """The package a module's names belong to: the package itself, or a module's parent."""
    return module if modules.get(module, False) else module.rpartition(".")[0]


def violations(source: str, module: str, is_package: bool, modules: dict[str, bool]) -> list[str]:
    """`line: what` for each private name of another package that `source` uses.

    `modules` maps every known dotted module name to whether it is a package.
    """
    package = module if is_package else module.rpartition(".")[0]
    tree = ast.parse(source)
    found: list[str] = []
    bound: dict[str, str] = {}  # local name -> module it refers to

    def check(owner_module: str, name: str, line: int, how: str) -> None:
        if _is_private(name) and _owner(owner_module, modules) != package:
            found.append(f"{line}: {how}")

    def check_path(dotted: str, line: int, how: str) -> None:
        """A private module on the way (`tether.x._impl.y`) is private to its parent."""
        parts = dotted.split(".")
        for index, part in enumerate(parts):
            if _is_private(part):
                check(".".join(parts[:index]), part, line, how)

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source_module = ".".join([*base, node.module] if node.module else base)
            else:
                source_module = node.module or ""
            if source_module.split(".")[0] != "tether":
                continue
            how = f"from {source_module} import "
            check_path(source_module, node.lineno, how + "...")
            for alias in node.names:
                check(source_module, alias.name, node.lineno, how + alias.name)
                if f"{source_module}.{alias.name}" in modules:
                    bound[alias.asname or alias.name] = f"{source_module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "tether":
                    continue
                check_path(alias.name, node.lineno, f"import {alias.name}")
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    bound["tether"] = "tether"

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            chain: list[str] = []
            value: ast.expr = node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                target = ".".join([bound[value.id], *chain])
                if target in modules:
                    check(target, node.attr, node.lineno, f"{target}.{node.attr}")
    return found


def _server_modules() -> dict[str, bool]:
    modules: dict[str, bool] = {}
    for path in (SERVER / "tether").rglob("*.py"):
        name, is_package = _module_name(path, SERVER)
        modules[name] = is_package
    return modules


def test_no_private_name_crosses_a_package() -> None:
    modules = _server_modules()
    assert "tether.search.filter_syntax" in modules  # the walk found the package
    found = []
    for path in sorted((SERVER / "tether").rglob("*.py")):
        name, is_package = _module_name(path, SERVER)
        for problem in violations(path.read_text(encoding="utf-8"), name, is_package, modules):
            found.append(f"{path.relative_to(SERVER.parent)}:{problem}")
    assert not found, "private names used across packages:\n" + "\n".join(found)


_MODULES = {
    "tether": True,
    "tether.search": True,
    "tether.search.values": False,
    "tether.search.sql": False,
    "tether.registry": True,
    "tether.registry.search": True,
    "tether.registry.search.sql": False,
    "tether.registry.search.filters": False,
}


def _check(source: str, module: str = "tether.registry.search.sql") -> list[str]:
    return violations(source, module, module in _MODULES and _MODULES[module], _MODULES)


def test_the_check_sees_each_form_of_use() -> None:
    assert _check("from tether.search.sql import _dialect") == [
        "1: from tether.search.sql import _dialect"
    ]
    assert _check("from ...search.sql import _dialect") == [
        "1: from tether.search.sql import _dialect"
    ]
    assert _check("from tether.search import sql\nsql._dialect(s)") == [
        "2: tether.search.sql._dialect"
    ]
    assert _check("import tether.search.sql as q\nq._x") == ["2: tether.search.sql._x"]
    assert _check("import tether.search.sql\ntether.search.sql._x") == ["2: tether.search.sql._x"]
    assert _check("from tether.search import _helpers") == ["1: from tether.search import _helpers"]


def test_the_check_allows_what_is_fine() -> None:
    # The same package, public names, dunders, and other libraries' private names.
    assert _check("from tether.registry.search.filters import _number") == []
    assert _check("from .filters import _number") == []
    assert _check("from tether.search.sql import compare, __doc__") == []
    assert _check("from sqlalchemy.orm import _private\nimport os\nos._exit") == []
    # A package's __init__ may use its own modules' private names.
    assert _check("from tether.search.sql import _like", "tether.search") == []
