"The shape of the house (issue 13): small modules and functions, imports that only run downward, notebooks that import only what they have already taught"
import ast, json, re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT/"nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")) and p.stem != "index")
MODULES = sorted(p for p in (ROOT/"ft_course").glob("*.py") if p.name not in ("__init__.py", "_modidx.py"))


def _cells(nb): return json.loads(nb.read_text(encoding="utf-8"))["cells"]
def _src(c): return "".join(c["source"])


def _exports(nb):
    "The module a notebook exports (its `#| default_exp`), or None"
    for c in _cells(nb):
        m = re.match(r"#\|\s*default_exp\s+(\S+)", _src(c))
        if m: return m.group(1)


ORDER = {mod: i for i, nb in enumerate(NBS) if (mod := _exports(nb))}   # module -> position of its notebook


def _imported(tree):
    "ft_course modules a piece of code imports (absolute `ft_course.x` or relative `.x`)"
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module:
            if n.module.startswith("ft_course."): out.add(n.module.split(".")[1])
            elif n.level == 1: out.add(n.module.split(".")[0])
            elif n.module == "ft_course": out |= {a.name for a in n.names if a.name in ORDER}
        elif isinstance(n, ast.Import):
            out |= {a.name.split(".")[1] for a in n.names if a.name.startswith("ft_course.")}
    return out & set(ORDER)


def test_every_module_has_a_notebook():
    assert {p.stem for p in MODULES} == set(ORDER)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_modules_and_functions_are_small(path):
    "No module over 400 lines, no function over 40"
    src = path.read_text()
    assert len(src.splitlines()) <= 400, f"{path.name} has {len(src.splitlines())} lines: split a concept out"
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(ast.parse(src))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 40]
    assert not long, f"{path.name}: functions over 40 lines {long}: give their steps names"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_modules_import_only_downward(path):
    "A module imports only modules of earlier notebooks, even inside functions: no loops, nothing upward"
    up = {m for m in _imported(ast.parse(path.read_text())) if ORDER[m] >= ORDER[path.stem]}
    assert not up, f"{path.name} imports {sorted(up)}, exported by the same or a later notebook"


@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.name)
def test_notebooks_import_only_what_they_have_taught(nb):
    "A notebook's code cells import ft_course modules of earlier notebooks only (its own module is defined in it)"
    here = ORDER.get(_exports(nb), max(ORDER.values()) + 1)
    later = set()
    for c in _cells(nb):
        if c["cell_type"] != "code" or _src(c).lstrip().startswith(("%", "!")): continue
        try: tree = ast.parse(_src(c))
        except SyntaxError: continue
        later |= {m for m in _imported(tree) if ORDER[m] > here or (ORDER[m] == here and _exports(nb) != m)}
    assert not later, f"{nb.name} imports {sorted(later)}, from notebooks it comes before"


def test_the_rule_can_fail(tmp_path):
    "The import check sees relative, absolute and in-function imports"
    tree = ast.parse("from .memory import x\ndef f():\n    from ft_course.compare import y\nimport ft_course.setup\n")
    assert _imported(tree) == {"memory", "compare", "setup"}
