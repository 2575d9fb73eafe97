"""Build the ft_course website: `python docs/build.py` (from the repository root or anywhere).

1. Stage every notebook of `nbs/` (file-name order, `index` first; names starting with `_` or `.` skipped) into
   `docs/_build/src`: `#|` directive lines removed, `#| hide` / `#| include: false` cells dropped, `#| echo: false`
   and `#| output: false` honoured, stored outputs kept (carriage-return progress bars collapsed as Jupyter shows
   them, widget outputs reduced to their text). Nothing is executed.
2. Write the API reference (`api/*.md`) from the `ft_course` modules and their docments (`docs/api_ref.py`).
3. Run Sphinx (MyST-NB, sphinx-book-theme, configuration `docs/conf.py`) with warnings as errors into
   `docs/_build/html`, then add nbdev-style short URLs (`lora.html` -> `04_lora.html`) and `.nojekyll`.

Works offline. Every build is a full one (`-E -a`): an incremental Sphinx build would not repeat the warnings of
pages it does not rewrite, and warnings are errors here.
"""
from __future__ import annotations
import argparse, json, re, shutil, sys, time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BUILD = DOCS/'_build'
STAGE, HTML, DOCTREES = BUILD/'src', BUILD/'html', BUILD/'doctrees'
REDIRECT_MARK = '<meta name="generator" content="ft_course-redirect">'
if str(DOCS) not in sys.path: sys.path.insert(0, str(DOCS))   # for `api_ref`, beside this file

_re_directive = re.compile(r'^\s*#\s*\|\s?(.*?)\s*$')
_re_hide_line = re.compile(r'#\s*\|\s*hide_line\s*$')
_re_show_doc = re.compile(r'^\s*show_doc\(.*\)\s*$')
_WIDGET_MIMES = ('application/vnd.jupyter.widget-view+json', 'application/vnd.jupyter.widget-state+json')


def write_if_changed(path:Path, text:str) -> Path:
    "Write `text` to `path` unless it already holds exactly that (unchanged files keep their mtimes)"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding='utf-8') != text: path.write_text(text, encoding='utf-8')
    return path


def split_directives(source:str) -> tuple[dict[str, str], str]:
    "nbdev directives at the top of a cell as {name: value}, and the source without them"
    lines, dirs = source.splitlines(), {}
    i = 0
    while i < len(lines) and not lines[i].strip(): i += 1
    while i < len(lines) and (m := _re_directive.match(lines[i])):
        name, _, value = m.group(1).partition(' ')
        if ':' in name: name, _, rest = name.partition(':'); value = f'{rest} {value}'
        if name: dirs[name.lower()] = value.strip()
        i += 1
    body = [l for l in lines[i:] if not _re_hide_line.search(l)]
    return dirs, '\n'.join(body).strip('\n')


def _collapse_cr(text:str) -> str:
    "What a terminal shows for text with carriage returns: each line keeps what follows its last `\\r`"
    return '\n'.join(l.rstrip('\r').rsplit('\r', 1)[-1] for l in text.split('\n'))


_re_attrs = re.compile(r'(\]\([^)\s]*\))\{[^}\n]*\}')


def _clean_markdown(md) -> str:
    "Markdown output (nbdev's `show_doc`) that docutils accepts: no `---` rule, no Quarto `{target=...}` attributes"
    md = ''.join(md)
    md = '\n'.join(l for l in md.split('\n') if l.strip() not in ('---', '***', '___'))
    return _re_attrs.sub(r'\1', md).strip('\n') + '\n'


def _clean_outputs(outputs:list) -> list:
    out = []
    for o in outputs:
        o = dict(o)
        if o.get('output_type') == 'stream':
            text = ''.join(o.get('text', ''))
            o['text'] = _collapse_cr(text)
            if not o['text'].strip(): continue
        elif 'data' in o:
            o['data'] = {k: v for k, v in o['data'].items() if k not in _WIDGET_MIMES}
            if 'text/markdown' in o['data']: o['data']['text/markdown'] = _clean_markdown(o['data']['text/markdown'])
            if not o['data']: continue
            o['metadata'] = {k: v for k, v in o.get('metadata', {}).items() if k not in _WIDGET_MIMES}
        out.append(o)
    return out


def gpu_label(ran:bool) -> dict:
    "The output that labels a `#| cuda` cell on the website: what it needs, and whether a GPU result is stored below it"
    text = ("**Needs a CUDA GPU.** The output below was stored from a GPU run." if ran else
            "**Needs a CUDA GPU.** The machine that stored this page's outputs has none, so this cell did not run here "
            "and no GPU result is stored yet: run it on Colab (Runtime > Change runtime type > T4 GPU).")
    return {'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown': text, 'text/plain': text.replace('**', '')}}


def stage_cell(cell:dict) -> dict | None:
    "The cell as the website shows it, or None when it is left out"
    src = ''.join(cell.get('source', ''))
    if cell['cell_type'] == 'raw': return None       # Quarto front matter and the like
    if cell['cell_type'] != 'code': return {'cell_type': cell['cell_type'], 'metadata': {},
                                            'source': src, **({'attachments': cell['attachments']} if cell.get('attachments') else {}),
                                            **({'id': cell['id']} if 'id' in cell else {})}
    dirs, body = split_directives(src)
    if 'hide' in dirs or dirs.get('include') == 'false': return None
    outputs = _clean_outputs(cell.get('outputs', []))
    tags = []
    if dirs.get('echo') == 'false' or (body and all(_re_show_doc.match(l) for l in body.splitlines() if l.strip())):
        tags.append('remove-input')
    if dirs.get('output') == 'false': tags.append('remove-output'); outputs = []
    if not body.strip():
        if not outputs: return None                  # e.g. a `#| default_exp` cell
        tags.append('remove-input')
    if 'remove-input' in tags and not outputs: return None
    if 'cuda' in dirs: outputs = [gpu_label(bool(outputs))] + outputs
    new = {'cell_type': 'code', 'execution_count': cell.get('execution_count'), 'metadata': {'tags': sorted(set(tags))} if tags else {},
           'outputs': outputs, 'source': body}
    if 'id' in cell: new['id'] = cell['id']
    return new


def colab_url(name:str) -> str:
    "Colab's URL for notebook `nbs/<name>` of the repository (what the launch button opens too)"
    return f'https://colab.research.google.com/github/ft-course/ft_course/blob/main/nbs/{name}'


def colab_badge(name:str) -> str:
    "An 'Open in Colab' badge (a local SVG: the site loads nothing from other hosts)"
    return (f'<a href="{colab_url(name)}" target="_blank" rel="noopener">'
            f'<img src="_static/colab-badge.svg" alt="Open in Colab" width="117" height="20"></a>')


def _is_colab_badge(md:str) -> bool:
    "True for a markdown cell holding only an 'Open In Colab' badge"
    return md.strip().startswith('[![Open In Colab]') and md.strip().count('\n') == 0


def stage_notebook(nb:dict, extra_md:str|None=None, badge:str|None=None) -> dict:
    "A copy of notebook `nb` with every cell staged, optionally ending with a markdown cell `extra_md`"
    cells = [c for c in map(stage_cell, nb.get('cells', [])) if c is not None]
    if badge:   # the notebook's own badge loads an image from Colab's host: the site shows a local copy instead
        cells = [c for c in cells if not (c['cell_type'] == 'markdown' and _is_colab_badge(c['source']))]
    if badge:   # right under the title cell
        at = next((i + 1 for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and c['source'].lstrip().startswith('# ')), 0)
        cells.insert(at, {'cell_type': 'markdown', 'id': 'ft-colab-badge', 'metadata': {}, 'source': colab_badge(badge)})
    if extra_md: cells.append({'cell_type': 'markdown', 'id': 'ft-extra', 'metadata': {}, 'source': extra_md})
    seen = set()
    for i, c in enumerate(cells):     # nbformat 4.5: every cell has a unique id
        if not c.get('id') or c['id'] in seen: c['id'] = f'ft-cell-{i}'
        seen.add(c['id'])
    meta = {k: v for k, v in nb.get('metadata', {}).items() if k in ('kernelspec', 'language_info')}
    meta.setdefault('kernelspec', {'display_name': 'python3', 'language': 'python', 'name': 'python3'})
    meta.setdefault('language_info', {'name': 'python'})
    return {'cells': cells, 'metadata': meta, 'nbformat': 4, 'nbformat_minor': 5}


def course_notebooks(nbs:Path) -> list[Path]:
    "The site's notebooks: `index.ipynb` first, then the others in file-name order (`_x` and `.x` skipped)"
    found = sorted(p for p in nbs.glob('*.ipynb') if not p.name.startswith(('_', '.')))
    index = [p for p in found if p.stem == 'index']
    if not index: raise SystemExit(f'{nbs}/index.ipynb is missing: the site needs a home page')
    return index + [p for p in found if p.stem != 'index']


def toctree(names:list[str], caption:str) -> str:
    "A hidden toctree; an entry is a page name or `Title <name>`"
    return f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n:caption: {caption}\n\n" + '\n'.join(names) + '\n```'


def numbered_entry(path:Path) -> str:
    "`NN · Title <name>` for a course notebook: the sidebar shows the number the course map uses"
    nb = json.loads(path.read_text(encoding='utf-8'))
    md = next((''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown'), '')
    m, num = re.match(r'#\s+(.+)', md.strip()), path.stem.split('_')[0]
    if not m or not num[:2].isdigit(): return path.stem
    title = re.sub(r'[`<>]', '', m.group(1).splitlines()[0]).strip()   # plain text: no code marks, no `<` in a toctree title
    return f'{num} · {title} <{path.stem}>'


_re_local_ref = re.compile(r'''(?:\]\(|src=["'])([^)"'\s#?]+)''')


def _referenced_files(nb:dict, nbs:Path) -> set[Path]:
    "Local files (images, data) that markdown cells link to, relative to `nbs/`"
    refs = set()
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        for ref in _re_local_ref.findall(c['source']):
            if '://' in ref or ref.startswith(('mailto:', '/')) or ref.endswith(('.ipynb', '.md')): continue
            p = (nbs/ref).resolve()
            if p.is_file() and nbs.resolve() in p.parents: refs.add(p.relative_to(nbs.resolve()))
    return refs


def stage(nbs:Path=ROOT/'nbs', dest:Path=STAGE) -> list[str]:
    "Stage notebooks and API pages into `dest`; return the notebook page names in site order"
    from api_ref import api_pages
    paths = course_notebooks(nbs)
    names = [p.stem for p in paths]
    keep = set()
    for p in paths:
        nb = json.loads(p.read_text(encoding='utf-8'))
        extra = None
        if p.stem == 'index':
            extra = toctree([numbered_entry(q) for q in paths if q.stem != 'index'], 'Course') + '\n\n' + toctree(['api/index'], 'Reference')
        staged = stage_notebook(nb, extra, badge=None if p.stem == 'index' else p.name)
        keep.add(write_if_changed(dest/p.name, json.dumps(staged, indent=1, ensure_ascii=False) + '\n'))
        for ref in _referenced_files(staged, nbs):
            (dest/ref).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(nbs/ref, dest/ref); keep.add(dest/ref)
    for name, text in api_pages().items(): keep.add(write_if_changed(dest/'api'/name, text))
    for f in [f for f in dest.rglob('*') if f.is_file() and f not in keep]: f.unlink()   # deleted notebooks
    return names


def short_name(page:str) -> str | None:
    "nbdev's URL for a notebook page: `04_lora` -> `lora` (None when the name has no number prefix)"
    m = re.match(r'^\d+[a-z]?_(.+)$', page)
    return m.group(1) if m else None


def write_redirects(pages:list[str], html:Path=HTML) -> list[Path]:
    "nbdev-style short URLs (`lora.html`), which the module docstrings link to, redirecting to the real pages"
    out = []
    for page in pages:
        short = short_name(page)
        if not short or (html/f'{short}.html').exists() and REDIRECT_MARK not in (html/f'{short}.html').read_text(): continue
        target = f'{page}.html'
        (html/f'{short}.html').write_text(
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{REDIRECT_MARK}\n'
            f'<title>{short}</title><link rel="canonical" href="{target}">\n'
            f'<meta http-equiv="refresh" content="0; url={target}"></head>\n'
            f'<body><p>Moved to <a href="{target}">{target}</a>.</p></body></html>\n')
        out.append(html/f'{short}.html')
    return out


def build(nbs:Path=ROOT/'nbs', html:Path=HTML, strict:bool=True, clean:bool=False, jobs:str='1', quiet:bool=True) -> Path:
    "Stage, then run Sphinx; return the HTML folder. Raises SystemExit on a Sphinx error or warning (when strict)"
    if clean: shutil.rmtree(BUILD, ignore_errors=True)
    t0 = time.time()
    pages = stage(Path(nbs))
    print(f'staged {len(pages)} notebooks and the API pages in {time.time()-t0:.1f} s', flush=True)
    from sphinx.cmd.build import build_main
    # -E -a: a fresh environment and every page written, so that a warning is never hidden by an earlier build
    args = ['-b', 'html', '-E', '-a', '-c', str(DOCS), '-d', str(DOCTREES), '-j', jobs, str(STAGE), str(html)]
    if strict: args[:0] = ['-W', '--keep-going']
    if quiet: args[:0] = ['-q']
    t1 = time.time()
    if rc := build_main(args): raise SystemExit(f'sphinx-build failed (exit {rc}); see the warnings above')
    write_redirects(pages, html)
    (html/'.nojekyll').touch()
    print(f'built {html} in {time.time()-t1:.1f} s (total {time.time()-t0:.1f} s)', flush=True)
    return html


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--nbs', type=Path, default=ROOT/'nbs', help='folder of notebooks (default: nbs/)')
    ap.add_argument('--out', type=Path, default=HTML, help='HTML output folder (default: docs/_build/html)')
    ap.add_argument('--no-strict', action='store_true', help='do not turn warnings into errors')
    ap.add_argument('--clean', action='store_true', help='delete docs/_build first (full rebuild)')
    ap.add_argument('-j', '--jobs', default='1', help="Sphinx parallel jobs ('auto' for all cores)")
    a = ap.parse_args()
    build(a.nbs, a.out, strict=not a.no_strict, clean=a.clean, jobs=a.jobs)
