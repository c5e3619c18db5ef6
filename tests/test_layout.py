"""The package boundaries hold: who may import whom, and no circles."""

import ast

import pytest

from app.settings import PROJECT_ROOT

APP = PROJECT_ROOT / "app"
DOMAIN = ("app.inference", "app.models", "app.fetch", "app.words")
FOUNDATION = ("app.settings", "app.errors")


def module_name(path):
    """Return the dotted module name of a file under the project root."""
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules=frozenset()):
    """Return every module a file imports, at the top or inside functions.

    ``from package import module`` counts as importing that module;
    ``from module import name`` as importing the module.
    """
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = {f"{node.module}.{alias.name}"
                          for alias in node.names} & modules
            names.update(submodules or {node.module})
    return names


def app_graph():
    """Return ``{module: {app modules it imports}}`` for the app package."""
    modules = {module_name(path): path for path in APP.rglob("*.py")}
    return {name: {imported for imported in imports_of(path,
                                                       frozenset(modules))
                   if imported in modules and imported != name}
            for name, path in modules.items()}


def within(name, packages):
    """Tell whether a module is one of, or inside one of, the packages."""
    return any(name == package or name.startswith(package + ".")
               for package in packages)


GRAPH = app_graph()


def test_the_graph_is_read():
    """The walk finds the packages, so the rules below test something."""
    assert {"app.web.predict", "app.models.registry", "app.fetch.client",
            "app.words.sqlite_store", "app.assembly"} <= set(GRAPH)
    assert "app.models.registry" in GRAPH["app.models.loading"]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_only_the_web_layer_imports_bottle(module):
    """Bottle stays in app.web; the domain knows nothing of HTTP."""
    path = next(path for path in APP.rglob("*.py")
                if module_name(path) == module)
    if not within(module, ("app.web",)):
        assert not {name for name in imports_of(path)
                    if name.split(".")[0] == "bottle"}


@pytest.mark.parametrize("module", sorted(name for name in GRAPH
                                          if within(name, DOMAIN)))
def test_domain_packages_do_not_import_upwards(module):
    """Domain code imports neither the web layer nor the assembly."""
    upward = {name for name in GRAPH[module]
              if within(name, ("app.web", "app.assembly"))}
    assert upward == set()


@pytest.mark.parametrize("module", FOUNDATION)
def test_settings_and_errors_import_nothing_of_the_app(module):
    """The bottom layer stands on the standard library alone."""
    assert GRAPH[module] == set()


def test_there_is_no_import_circle():
    """No module reaches itself by following imports."""
    done, active = set(), []

    def visit(module):
        assert module not in active, " -> ".join(active + [module])
        if module in done:
            return
        active.append(module)
        for imported in GRAPH[module]:
            visit(imported)
        active.pop()
        done.add(module)

    for module in sorted(GRAPH):
        visit(module)


def test_only_settings_reads_the_environment():
    """Settings are read once; nothing else looks at os.environ."""
    readers = sorted(module_name(path) for path in APP.rglob("*.py")
                     if "os.environ" in path.read_text()
                     or "getenv" in path.read_text())
    assert readers == ["app.settings"]
