"""The website's inputs: README.md never drifts from nbs/index.ipynb, notebooks are staged with their directives
stripped and hidden cells left out, the API pages carry every docment, and the notebooks store outputs to show.
(tests/test_site.py checks the built site in a browser.)"""
import json, re, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'docs'))


def _load_docs_module(name:str):
    "Import docs/<name>.py as `ft_docs_<name>` (a plain `import build` could find pypa's `build` package)"
    import importlib.util
    key = f'ft_docs_{name}'
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT/'docs'/f'{name}.py')
        sys.modules[key] = mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return sys.modules[key]


site_build, make_readme, store_outputs = (_load_docs_module(n) for n in ('build', 'make_readme', 'store_outputs'))

NOTEBOOKS = site_build.course_notebooks(ROOT/'nbs')


def _nb(path): return json.loads(Path(path).read_text(encoding='utf-8'))


def _cell(src, kind='code', outputs=()):
    c = {'cell_type': kind, 'metadata': {}, 'source': src}
    if kind == 'code': c |= {'outputs': list(outputs), 'execution_count': None}
    return c


def test_readme_matches_index():
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    if make_readme.MARKER not in readme:
        pytest.skip('README.md is not generated yet: run `python docs/make_readme.py` (it is then checked byte for byte)')
    want = make_readme.make_readme()
    assert readme == want, ('README.md has drifted from nbs/index.ipynb + docs/README_dev.md: edit those, then run '
                            '`python docs/make_readme.py` (see `python docs/make_readme.py --check` for the diff)')


def test_readme_links_resolve():
    "Every relative link of the README that would be generated points at a file in the repository"
    text = make_readme.make_readme()
    text = re.sub(r'^```.*?^```', '', text, flags=re.M | re.S)
    missing = [t for t in re.findall(r'\]\(([^)\s]+)\)', text)
               if not re.match(r'^[a-z]+:|#', t) and not (ROOT/t.split('#')[0]).exists()]
    assert not missing, f'README links to files that do not exist: {missing}'


def test_rebase_links():
    md = '[a](04_lora.ipynb#x) ![p](img/a.png) [b](../bench/r.md) [c](https://x.y/z) [d](#top)\n```\n[e](f.ipynb)\n```'
    test = make_readme.rebase_links(md)
    assert test == ('[a](nbs/04_lora.ipynb#x) ![p](nbs/img/a.png) [b](bench/r.md) [c](https://x.y/z) [d](#top)\n'
                    '```\n[e](f.ipynb)\n```')


def test_course_order(tmp_path):
    for n in ['10_b', '02_a', 'index', '_scratch', '01_z', '02a_c']: (tmp_path/f'{n}.ipynb').write_text('{}')
    assert [p.stem for p in site_build.course_notebooks(tmp_path)] == ['index', '01_z', '02_a', '02a_c', '10_b']
    (tmp_path/'index.ipynb').unlink()
    with pytest.raises(SystemExit, match='index.ipynb'): site_build.course_notebooks(tmp_path)


def test_stage_cell_rules():
    png = {'output_type': 'display_data', 'data': {'image/png': 'iVBO', 'text/plain': '<Figure>'}, 'metadata': {}}
    bar = {'output_type': 'stream', 'name': 'stderr', 'text': '\r 0%|  |\r100%|##|\ndone\n'}
    sdoc = {'output_type': 'display_data', 'metadata': {}, 'data': {'text/plain': '<ShowDoc>', 'text/markdown':
            '---\n\n[source](https://g/x.py#L3){target="_blank" style="float:right"}\n\n### f\n'}}
    widget = {'output_type': 'display_data', 'metadata': {},
              'data': {'application/vnd.jupyter.widget-view+json': {'model_id': 'x'}, 'text/plain': 'HBox()'}}
    nb = {'cells': [_cell('# Title\n\n> summary', 'markdown'), _cell('#| default_exp lora'),
                    _cell('#| export\ndef f(x): return x', outputs=[bar]), _cell('#| hide\nfrom fastcore.test import *'),
                    _cell('#|include: false\nsecret = 1'), _cell('#| echo: false\nplot()', outputs=[png]),
                    _cell('#| output: false\nnoisy()', outputs=[bar]), _cell('show_doc(f)', outputs=[sdoc]),
                    _cell('y = 2 #|hide_line\nz = 3', outputs=[widget]), _cell('---\ntitle: x\n---', 'raw')],
          'metadata': {'kernelspec': {'name': 'python3'}}}
    cells = site_build.stage_notebook(nb)['cells']
    code = [c for c in cells if c['cell_type'] == 'code']
    assert [c['source'] for c in code] == ['def f(x): return x', 'plot()', 'noisy()', 'show_doc(f)', 'z = 3']
    assert code[0]['outputs'][0]['text'] == '100%|##|\ndone\n'            # progress bar as Jupyter shows it
    assert code[1]['metadata']['tags'] == ['remove-input'] and code[1]['outputs'] == [png]
    assert code[2]['metadata']['tags'] == ['remove-output'] and code[2]['outputs'] == []
    assert code[3]['metadata']['tags'] == ['remove-input']                 # show_doc: only its output shows,
    assert code[3]['outputs'][0]['data']['text/markdown'] == '[source](https://g/x.py#L3)\n\n### f\n'  # as docutils takes it
    assert code[4]['outputs'][0]['data'] == {'text/plain': 'HBox()'}      # no widget JS needed
    assert len(cells) == 6 and cells[0]['cell_type'] == 'markdown'         # hide, include:false, default_exp, raw: out


def test_gpu_cells_are_labelled():
    "A `#| cuda` cell says on the website that it needs a GPU, and whether the output under it came from one"
    out = {'output_type': 'stream', 'name': 'stdout', 'text': 'peak 9.7 GiB\n'}
    unrun, ran = (site_build.stage_cell(_cell('#| cuda\ntrain()', outputs=o)) for o in ([], [out]))
    assert 'Needs a CUDA GPU' in unrun['outputs'][0]['data']['text/markdown'] and len(unrun['outputs']) == 1
    assert 'did not run here' in unrun['outputs'][0]['data']['text/plain']
    assert 'stored from a GPU run' in ran['outputs'][0]['data']['text/markdown'] and ran['outputs'][1] == out
    assert site_build.stage_cell(_cell('train()'))['outputs'] == []          # other cells get no label
    staged = site_build.stage_notebook(json.loads((ROOT/'nbs'/'05_qlora.ipynb').read_text()))['cells']
    assert sum('Needs a CUDA GPU' in str(c.get('outputs')) for c in staged) == 3   # 05's three GPU cells


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_stage_real_notebook(path):
    "No directive line survives staging, `#| hide` cells are out, outputs of shown cells are kept"
    nb = _nb(path)
    staged = site_build.stage_notebook(nb)
    code = [c for c in staged['cells'] if c['cell_type'] == 'code']
    assert not [c['source'] for c in code if re.search(r'^\s*#\s*\|', c['source'], re.M)]
    kept = {c['source']: c for c in code}
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        dirs, body = site_build.split_directives(''.join(c['source']))
        if not body.strip() or (site_build._re_show_doc.match(body) and not c.get('outputs')): continue
        if 'hide' in dirs or dirs.get('include') == 'false': assert body not in kept, f'hidden cell shown: {body[:60]}'
        elif dirs.get('output') != 'false':
            clean = site_build._clean_outputs(c.get('outputs', []))
            assert kept[body]['outputs'] == ([site_build.gpu_label(bool(clean))] if 'cuda' in dirs else []) + clean


def test_api_pages_carry_docments():
    "Every docment of every public function and class of ft_course appears on its API page"
    from fastcore.docments import docments
    import api_ref, importlib
    pages = api_ref.api_pages()
    mods = api_ref.public_modules()
    assert set(pages) == {'index.md'} | {m.split('.')[-1] + '.md' for m in mods}
    missing = []
    for m in mods:
        mod, page = importlib.import_module(m), pages[m.split('.')[-1] + '.md']
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not callable(obj): continue
            assert f'## {name}\n' in page, f'{m}.{name} has no heading'
            for arg, info in docments(obj, full=True).items():
                if info.get('docment') and api_ref._cell(info['docment']) not in page: missing.append(f'{m}.{name}({arg})')
    assert not missing, f'docments missing from the API pages: {missing}'



def test_api_summaries_are_sentences():
    "The API landing page describes each module with a whole sentence, never a fragment cut at ':' or ';'"
    import api_ref
    rows = [l for l in api_ref.render_index(api_ref.public_modules()).splitlines() if l.startswith('| [`')]
    cut = [r.split(' | ')[1][-40:] for r in rows if not r.split(' | ')[1].rstrip().endswith('.')]
    assert rows and not cut, f'module summaries that are not sentences: {cut}'

@pytest.mark.parametrize('path', [p for p in NOTEBOOKS if p.stem != 'index'], ids=lambda p: p.name)
def test_notebook_stores_outputs(path):
    "The website shows stored outputs (it executes nothing), so a notebook without any shows no result or plot"
    nb = _nb(path)
    assert any(c.get('outputs') for c in nb['cells'] if c['cell_type'] == 'code'), (
        f'{path.name} has no stored outputs, so its web page would show code without results or plots: run '
        f'`python docs/store_outputs.py {path.stem}`')


def _stored_profiles(nb):
    "Profile names shown by the stored outputs of cells that call `get_profile()` (e.g. `prof.name` -> 'cpu')"
    found = set()
    for c in nb['cells']:
        if c['cell_type'] != 'code' or 'get_profile()' not in ''.join(c['source']): continue
        for o in c.get('outputs', []):
            m = re.match(r"\(?'(tiny|cpu|gpu)'", ''.join(o.get('data', {}).get('text/plain', '')))
            if m: found.add(m.group(1))
    return found


def test_stored_outputs_come_from_the_right_profile():
    "The website shows real runs: the cpu profile wherever a notebook trains a model (MiniLM, SmolLM2), tiny only where it must"
    assert set(store_outputs.STORED_PROFILE) == {p.stem for p in NOTEBOOKS if p.stem != 'index'}, (
        'docs/store_outputs.py must name the profile of every notebook')
    assert set(store_outputs.TINY_BECAUSE) == {n for n, p in store_outputs.STORED_PROFILE.items() if p == 'tiny'}
    shown = {p.stem: _stored_profiles(_nb(p)) for p in NOTEBOOKS if p.stem != 'index'}
    wrong = {n: f'stored {sorted(s)}, should be {store_outputs.STORED_PROFILE[n]}' for n, s in shown.items()
             if s and s != {store_outputs.STORED_PROFILE[n]}}
    assert not wrong, f'{wrong}: re-run `python docs/store_outputs.py <name>`'
    assert {n for n, s in shown.items() if s} >= {'02_full_finetune', '03_llrd', '04_lora', '05_qlora', '06_prompt_tuning', '07_sft',
                                                  '08_monitoring'}


DIRT = {'a progress bar': re.compile(r'\d+/\d+ \[\d\d:\d\d|it/s\]|examples/s\]|\d+%\|'),
        'a machine path': re.compile(r'/root/|/home/|/tmp/|/work/|/usr/|site-packages/|[A-Z]:\\\\Users'),
        'a warning': re.compile(r'\b\w*Warning\b'), 'a W&B banner': re.compile(r'^wandb: ', re.M),
        'a library log line': re.compile(r'^\[(INFO|WARNING|DEBUG)\] ', re.M)}
LONGEST = 60   # lines: a training log belongs in a table or a plot (02's `log_frame`, `plot_losses`)

def stored_dirt(nb)->list[str]:
    "What a reader should not find in the stored outputs of `nb`: one line per finding"
    found = []
    for i, c in enumerate(nb['cells']):
        for o in c.get('outputs', []):
            text = ''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))
            found += [f'cell {i}: {what}: {m.group(0)!r}' for what, rx in DIRT.items() for m in [rx.search(text)] if m]
            if o.get('name') == 'stderr': found.append(f'cell {i}: stderr: {text[:60]!r}')
            if text.count('\n') > LONGEST: found.append(f'cell {i}: {text.count(chr(10))} lines of output')
    return found

def test_dirt_is_found():
    "The check can fail: a planted progress bar, path, warning and long log are each reported"
    out = lambda t, name='stdout': {'cells': [{'outputs': [{'output_type': 'stream', 'name': name, 'text': t}]}]}
    assert stored_dirt(out('ok\n')) == []
    for t in ['Loading weights: 100%|###| 103/103 [00:00<00:00, 1.2it/s]', "Path('/root/.cache/x')",
              'x.py:3: FutureWarning: old', 'wandb: Tracking run', '[INFO] Running in WANDB offline mode', 'log\n' * 80]:
        assert stored_dirt(out(t)), t
    assert stored_dirt(out('fine', name='stderr'))

@pytest.mark.parametrize('path', [p for p in NOTEBOOKS if p.stem != 'index'], ids=lambda p: p.stem)
def test_stored_outputs_are_clean(path):
    "A stored output is part of the page: no progress bars, machine paths, warnings, stderr or long log dumps"
    found = stored_dirt(_nb(path))
    assert not found, f'{path.stem} stores {found[:5]}: silence them at the source, then re-store with docs/store_outputs.py {path.stem}'


def test_sidebar_shows_the_map_numbers():
    "The site's sidebar lists each notebook as `NN · Title`, the numbers of the course map on the home page"
    entries = [site_build.numbered_entry(p) for p in NOTEBOOKS if p.stem != 'index']
    assert all(re.match(r'\d\d[a-z]? · [^<>`]+ <\w+>$', e) for e in entries), entries
    assert site_build.numbered_entry(ROOT/'nbs'/'02_full_finetune.ipynb') == '02 · Full fine-tuning with Trainer <02_full_finetune>'


def test_store_times_are_recorded(tmp_path):
    "docs/store_outputs.py keeps each notebook's store time, which the 'What it costs' claims read"
    path = tmp_path/'times.json'
    store_outputs.record_time('02_full_finetune', 296.6, path)
    got = store_outputs.record_time('10a_compare', 51.2, path)
    assert got['02_full_finetune']['seconds'] == 297 and got['10a_compare']['profile'] == 'tiny'
    assert json.loads(path.read_text()) == got
    stored = json.loads(store_outputs.TIMES.read_text())
    assert set(stored) <= set(store_outputs.STORED_PROFILE) and all(v['seconds'] > 0 for v in stored.values())
