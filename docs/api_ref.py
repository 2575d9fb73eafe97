"""API reference pages for `ft_course`, rendered as MyST markdown.

autodoc reads docstrings only, and the course documents parameters with docments (a comment after each
parameter), so each page is written here from `fastcore.docments.docments(obj, full=True)`: a heading per
public name (the module's `__all__`, in source order), the signature, the one-line docstring and a table of
parameters with their types, defaults and docments.
"""
from __future__ import annotations
import dataclasses, importlib, inspect, pkgutil, pprint, re
from pathlib import Path

from fastcore.docments import docments

_empty = inspect.Parameter.empty


def public_modules(package:str='ft_course' # the package to document
                  )->list[str]:
    "Names of the package's public modules (no leading underscore), sorted"
    pkg = importlib.import_module(package)
    return sorted(f'{package}.{m.name}' for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith('_'))


def source_notebook(mod) -> str | None:
    "File name of the notebook a module was exported from (nbdev's `File to edit:` header), or None"
    try: src = Path(inspect.getsourcefile(mod)).read_text()
    except (TypeError, OSError): return None
    m = re.search(r'File to edit: \S*?([^/\s]+\.ipynb)', src)
    return m.group(1) if m else None


def _summary(doc:str|None) -> str:
    "Module docstring without nbdev's trailing `Docs: <url>` line"
    doc = inspect.cleandoc(doc or '')
    return re.sub(r'\n+Docs: \S+\s*$', '', doc).strip()


def _anno(a) -> str:
    if a is None or a is _empty: return ''
    return a if isinstance(a, str) else inspect.formatannotation(a)


def _cell(s:str) -> str:
    "Text safe inside a markdown table cell"
    return ' '.join(str(s).split()).replace('|', r'\|')


def _code(s:str) -> str:
    return f'`{_cell(s)}`' if s else ''


def _default(v) -> str:
    if v is _empty: return ''
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + '...'


def _factory_defaults(obj) -> dict[str, str]:
    "Dataclass fields built by `default_factory`, shown as the value the factory makes instead of `<factory>`"
    if not dataclasses.is_dataclass(obj) or not isinstance(obj, type): return {}
    return {f.name: _default(f.default_factory()) for f in dataclasses.fields(obj) if f.default_factory is not dataclasses.MISSING}


def _params(obj) -> list[tuple[str, str, str, str]]:
    "(name, type, default, docment) rows, the return value last when it is annotated (not None) or documented"
    try: d = docments(obj, full=True)
    except (TypeError, ValueError, OSError): return []
    rows, factories = [], _factory_defaults(obj)
    for name, info in d.items():
        if name in ('self', 'cls'): continue
        if name == 'return':
            anno = _anno(info.get('anno'))
            if info.get('docment') or anno not in ('', 'None'): rows.append(('**returns**', anno, '', info.get('docment') or ''))
            continue
        kind = info.get('kind')
        star = '*' if kind == inspect.Parameter.VAR_POSITIONAL else '**' if kind == inspect.Parameter.VAR_KEYWORD else ''
        default = factories.get(name) or _default(info.get('default', _empty))
        rows.append((f'{star}{name}', _anno(info.get('anno')), default, info.get('docment') or ''))
    return rows


def _param_str(p:inspect.Parameter, default:str|None=None) -> str:
    "`name: type = default` without the quotes that postponed annotations leave in `str(p)`"
    star = '*' if p.kind == p.VAR_POSITIONAL else '**' if p.kind == p.VAR_KEYWORD else ''
    s = star + p.name + (f': {_anno(p.annotation)}' if _anno(p.annotation) else '')
    if p.default is not _empty: s += (' = ' if _anno(p.annotation) else '=') + (default or _default(p.default))
    return s


def _signature(name:str, obj, prefix:str='def') -> str:
    "A `def name(...)` line, one parameter a line when it would be long"
    try: sig = inspect.signature(obj)
    except (TypeError, ValueError): return f'{prefix} {name}(...)'
    factories = _factory_defaults(obj)
    params = [_param_str(p, factories.get(p.name)) for p in sig.parameters.values() if p.name not in ('self', 'cls')]
    ret = '' if sig.return_annotation is _empty or prefix == 'class' else f' -> {_anno(sig.return_annotation)}'
    one = f"{prefix} {name}({', '.join(params)}){ret}"
    if len(one) <= 72: return one
    body = ''.join(f'    {p},\n' for p in params)
    return f'{prefix} {name}(\n{body}){ret}'


def _table(rows) -> str:
    if not rows: return ''
    out = ['| parameter | type | default | description |', '|---|---|---|---|']
    out += [f'| `{_cell(n)}` | {_code(t)} | {_code(d)} | {_cell(doc)} |' if not n.startswith('**r')
            else f'| {n} | {_code(t)} | | {_cell(doc)} |' for n, t, d, doc in rows]
    return '\n'.join(out) + '\n'


def _docstring(obj) -> str:
    "The object's own docstring, never one inherited from a base class (torch's `forward` text, say)"
    if isinstance(obj, property): obj = obj.fget
    doc = obj.__dict__.get('__doc__') if isinstance(obj, type) else getattr(obj, '__doc__', None)
    return inspect.cleandoc(doc) if doc else ''


def render_function(name:str, fn, level:int=2) -> str:
    "Markdown for one function or method: heading, signature, docstring, parameter table"
    parts = [f"{'#' * level} {name}", f"```python\n{_signature(name.split('.')[-1], fn)}\n```"]
    if doc := _docstring(fn): parts.append(doc)
    if tbl := _table(_params(fn)): parts.append(tbl)
    return '\n\n'.join(parts) + '\n'


def _own_methods(cls) -> list[tuple[str, object]]:
    "Public methods and properties defined in the class body itself (not inherited), in source order"
    out = []
    for n, v in cls.__dict__.items():
        if n.startswith('_'): continue
        if isinstance(v, (staticmethod, classmethod)): v = v.__func__
        if inspect.isfunction(v) or isinstance(v, property): out.append((n, v))
    return out


def render_class(name:str, cls) -> str:
    "Markdown for a class: its constructor's parameters (dataclass fields included), then its own methods"
    bases = [b.__name__ for b in cls.__bases__ if b is not object]
    parts = [f'## {name}', f"```python\n{_signature(name, cls, 'class')}\n```"]
    if bases: parts.append('Subclass of ' + ', '.join(f'`{b}`' for b in bases) + '.')
    if doc := _docstring(cls): parts.append(doc)
    if tbl := _table(_params(cls)): parts.append(tbl)
    for mname, m in _own_methods(cls):
        if isinstance(m, property):
            parts.append(f'### {name}.{mname} (property)' + (f'\n\n{_docstring(m)}' if _docstring(m) else ''))
        else: parts.append(render_function(f'{name}.{mname}', m, level=3).rstrip())
    return '\n\n'.join(parts) + '\n'


def render_constant(name:str, value) -> str:
    "Markdown for a module-level constant: its value, shortened when long"
    r = pprint.pformat(value, width=88, compact=True)
    if len(r) > 600: r = r[:597] + '...'
    return f'## {name}\n\n```python\n{name} = {r}\n```\n'


def render_module(modname:str, # e.g. 'ft_course.train'
                  nb_prefix:str='../' # relative path from the API page to the notebook pages
                 )->str:
    "The whole API page of one module"
    mod = importlib.import_module(modname)
    names = getattr(mod, '__all__', None) or [n for n, v in vars(mod).items()
                                              if not n.startswith('_') and getattr(v, '__module__', None) == modname]
    parts = [f'# {modname}']
    if s := _summary(mod.__doc__): parts.append(s)
    if nb := source_notebook(mod):
        parts.append(f'Written and explained in the notebook [{Path(nb).stem}]({nb_prefix}{nb}).')
    for n in names:
        obj = getattr(mod, n)
        if inspect.isclass(obj): parts.append(render_class(n, obj))
        elif callable(obj): parts.append(render_function(n, obj))
        else: parts.append(render_constant(n, obj))
    return '\n\n'.join(p.rstrip() for p in parts) + '\n'


def render_index(modnames:list[str]) -> str:
    "The API landing page: a table of modules and a hidden toctree"
    rows = ['| module | what it holds | notebook |', '|---|---|---|']
    for m in modnames:
        mod = importlib.import_module(m)
        first = _summary(mod.__doc__).split('\n\n')[0]
        first = re.split(r'(?<=\.)\s', first, maxsplit=1)[0] if len(first) > 160 else first   # a whole sentence, never a fragment ending in ':'
        nb = source_notebook(mod)
        link = f'[{Path(nb).stem}](../{nb})' if nb else ''
        rows.append(f"| [`{m}`]({m.split('.')[-1]}.md) | {_cell(first)} | {link} |")
    toc = '\n'.join(m.split('.')[-1] for m in modnames)
    return ('# API reference\n\nEvery public name of `ft_course`, with its parameters as documented in the notebooks '
            '(docments). The notebooks explain why each piece exists; these pages say how to call it.\n\n'
            + '\n'.join(rows) + f'\n\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toc}\n```\n')


def api_pages(package:str='ft_course' # the package to document
             )->dict[str, str]:
    "{file name: markdown} for the API folder: `index.md` and one page per public module"
    mods = public_modules(package)
    return {'index.md': render_index(mods)} | {f"{m.split('.')[-1]}.md": render_module(m) for m in mods}
