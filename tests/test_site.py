"""Browser test of the website: every page loads in headless Chromium with no console error, every internal link,
anchor and image resolves, notebook pages show their code cells, stored plots and a Colab button, search answers.

Builds the site with `python docs/build.py` first (set FT_SITE_DIR to test an existing build instead),
serves it from 127.0.0.1 with `python -m http.server`, and drives Debian's `chromium` over the DevTools protocol
(`websocket-client`). External hosts are unreachable on purpose (`--host-resolver-rules`): the site must not need
them. Screenshots go to FT_SCREENSHOT_DIR (default `docs/_build/screens`). Skips, saying why, without chromium.
"""
import base64, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.error, urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]


from test_docs import _load_docs_module   # one loader for docs/*.py (a plain `import build` finds pypa's `build`)


site_build = _load_docs_module('build')

CHROMIUM_FLAGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync', '--no-first-run', '--no-default-browser-check',
                  '--disable-dev-shm-usage', '--hide-scrollbars', '--window-size=1280,900',
                  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1']


def _chromium() -> str | None:
    "FT_CHROMIUM if set (a path or a name), else Debian's `chromium`"
    if exe := os.environ.get('FT_CHROMIUM'): return shutil.which(exe)
    for name in ('chromium', 'chromium-browser', '/usr/bin/chromium'):
        if p := shutil.which(name): return p
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _wait_http(url:str, timeout:float=20):
    t0 = time.time()
    while True:
        try: return urllib.request.urlopen(url, timeout=2).read()
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.time() - t0 > timeout: raise
            time.sleep(0.1)


class CDP:
    "Minimal Chrome DevTools Protocol client over one page target: commands, and the events seen meanwhile"
    def __init__(self, ws_url:str):
        import websocket
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True, enable_multithread=False)
        self.n, self.events = 0, []

    def send(self, method:str, timeout:float=30, **params) -> dict:
        self.n += 1; my_id = self.n
        self.ws.send(json.dumps({'id': my_id, 'method': method, 'params': params}))
        t0 = time.time()
        while time.time() - t0 < timeout:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == my_id:
                if 'error' in msg: raise RuntimeError(f'{method}: {msg["error"]}')
                return msg.get('result', {})
            if 'method' in msg: self.events.append(msg)
        raise TimeoutError(method)

    def wait_event(self, method:str, timeout:float=30) -> dict:
        t0 = time.time()
        for i, e in enumerate(self.events):
            if e['method'] == method: return self.events.pop(i)
        while time.time() - t0 < timeout:
            self.ws.settimeout(max(0.1, timeout - (time.time() - t0)))
            msg = json.loads(self.ws.recv())
            if msg.get('method') == method: return msg
            if 'method' in msg: self.events.append(msg)
        raise TimeoutError(method)

    def eval(self, js:str, timeout:float=30):
        r = self.send('Runtime.evaluate', timeout=timeout, expression=js, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r: raise RuntimeError(f'JS error: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def close(self): self.ws.close()


@pytest.fixture(scope='module')
def site():
    "The built site folder: FT_SITE_DIR if set, else a fresh (incremental) `docs/build.py` build"
    if d := os.environ.get('FT_SITE_DIR'): return Path(d)
    r = subprocess.run([sys.executable, str(ROOT/'docs'/'build.py')], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f'docs/build.py failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}'
    return site_build.HTML


@pytest.fixture(scope='module')
def server(site):
    port = _free_port()
    p = subprocess.Popen([sys.executable, '-m', 'http.server', str(port), '--bind', '127.0.0.1', '--directory', str(site)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f'http://127.0.0.1:{port}/'
    try:
        _wait_http(base)
        yield base
    finally: p.terminate(); p.wait(10)


def _stop_group(proc:subprocess.Popen, timeout:float=10):
    "Terminate `proc` and every process in its group (Chromium's helpers), and wait until the group is gone"
    def _signal(sig):
        try: os.killpg(proc.pid, sig); return True
        except ProcessLookupError: return False   # the group has no process left
    _signal(signal.SIGTERM)
    try: proc.wait(timeout)
    except subprocess.TimeoutExpired: pass
    t0 = time.time()
    while _signal(signal.SIGKILL) and time.time() - t0 < timeout:
        if proc.poll() is None: proc.wait(1)
        time.sleep(0.1)


@pytest.fixture(scope='module')
def browser():
    exe = _chromium()
    if not exe: pytest.skip('chromium is not installed, so the browser test cannot run: install it with '
                            '`bash .ci/install_chromium.sh` (Debian: apt-get install chromium)')
    # Chromium's helper processes can outlive the main one and keep writing to the profile folder, so the browser
    # runs in its own process group (killed as a whole) and a late write cannot fail the folder's cleanup.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', '--remote-debugging-port=0',
                                 '--remote-debugging-address=127.0.0.1', 'about:blank'],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            port_file, t0 = Path(profile)/'DevToolsActivePort', time.time()
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None: pytest.fail(f'chromium exited: {proc.stderr.read().decode()[-2000:]}')
                if time.time() - t0 > 30: pytest.fail('chromium did not open its DevTools port within 30 s')
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            targets = json.loads(_wait_http(f'http://127.0.0.1:{port}/json/list'))
            page = next(t for t in targets if t['type'] == 'page')
            cdp = CDP(page['webSocketDebuggerUrl'])
            for m in ('Page.enable', 'Runtime.enable', 'Log.enable', 'Network.enable'): cdp.send(m)
            cdp.send('Emulation.setDeviceMetricsOverride', width=1280, height=900, deviceScaleFactor=1, mobile=False)
            yield cdp
            cdp.close()
        finally: _stop_group(proc)


_PAGE_JS = r'''(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; })));
  const outImgs = [...document.querySelectorAll('.cell_output img')];
  return {
    title: document.title,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth})),
    cells: document.querySelectorAll('div.cell').length,
    highlights: document.querySelectorAll('div.cell .highlight').length,
    outputImages: outImgs.length,
    launch: [...document.querySelectorAll('.dropdown-launch-buttons a')].map(a => a.href),
    badges: [...document.querySelectorAll('article a')].filter(a => a.querySelector('img[alt="Open in Colab"]')).map(a => a.href),
    directives: [...document.querySelectorAll('div.cell_input pre')].filter(p => /^\s*#\s*\|/m.test(p.textContent)).length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    rawMath: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container')).length,
  };
})()'''


def _visit(cdp:CDP, url:str) -> tuple[dict, list[str], list[str]]:
    "Load `url`; return (page facts, errors, failed external requests)"
    cdp.events.clear()
    nav = cdp.send('Page.navigate', url=url)
    if nav.get('errorText'): return {}, [f'navigation failed: {nav["errorText"]}'], []
    cdp.wait_event('Page.loadEventFired')
    facts = cdp.eval(_PAGE_JS)
    time.sleep(0.05)
    cdp.send('Runtime.evaluate', expression='0')   # drain events that arrived meanwhile
    errors, external, req_url = [], [], {}
    local = urlparse(url).netloc
    for e in cdp.events:
        m, p = e['method'], e.get('params', {})
        if m == 'Network.requestWillBeSent': req_url[p['requestId']] = p['request']['url']
        elif m == 'Network.responseReceived' and urlparse(p['response']['url']).netloc == local and p['response']['status'] >= 400:
            errors.append(f'HTTP {p["response"]["status"]} for {p["response"]["url"]}')
        elif m == 'Network.loadingFailed':
            u = req_url.get(p['requestId'], '?')
            (errors if urlparse(u).netloc == local else external).append(f'{p.get("errorText")} {u}')
        elif m == 'Runtime.exceptionThrown':
            d = p['exceptionDetails']; errors.append(f'JS exception: {d.get("exception", {}).get("description", d.get("text"))}')
        elif m == 'Runtime.consoleAPICalled' and p['type'] in ('error', 'assert'):
            errors.append('console.error: ' + ' '.join(str(a.get('value', a.get('description', ''))) for a in p['args']))
        elif m == 'Log.entryAdded' and p['entry']['level'] == 'error':
            u = p['entry'].get('url', '')
            if u and urlparse(u).netloc not in ('', local): external.append(f'{p["entry"]["text"]} {u}')
            else: errors.append(f'console: {p["entry"]["text"]} {u}')
    return facts, errors, external


def _expected_plots(stage_nb:Path) -> int:
    "Images among the stored outputs of a staged notebook (cells whose outputs are shown)"
    nb = json.loads(stage_nb.read_text())
    return sum(1 for c in nb['cells'] if c['cell_type'] == 'code' and 'remove-output' not in c['metadata'].get('tags', [])
               for o in c['outputs'] if any(k.startswith('image/') for k in o.get('data', {})))


def _screenshot(cdp:CDP, path:Path, full:bool=False):
    kw = {'captureBeyondViewport': True} if full else {}
    path.write_bytes(base64.b64decode(cdp.send('Page.captureScreenshot', format='png', **kw)['data']))


def test_site_in_browser(site, server, browser):
    shots = Path(os.environ.get('FT_SCREENSHOT_DIR') or site_build.BUILD/'screens'); shots.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html') if not p.relative_to(site).parts[0].startswith('_')
                   and site_build.REDIRECT_MARK not in p.read_text(encoding='utf-8', errors='replace'))
    notebooks = [p.name for p in site_build.course_notebooks(ROOT/'nbs')]
    assert 'index.html' in pages and all(f'{Path(n).stem}.html' in pages for n in notebooks), 'a notebook has no page'
    problems, external, facts = {}, set(), {}
    for page in pages:
        f, errs, ext = _visit(browser, server + page)
        facts[page] = f; external.update(ext)
        if errs: problems[page] = errs
        if not f: continue
        for img in f['images']:
            if img['w'] == 0: problems.setdefault(page, []).append(f'image did not load: {img["src"]}')
        if f['mathErrors'] or f['rawMath']:
            problems.setdefault(page, []).append(f"math not rendered: {f['mathErrors']} errors, {f['rawMath']} raw")
    # every internal link resolves, and its #anchor exists on the target page
    checked = {}
    for page, f in facts.items():
        for link in f.get('links', []):
            if not link.startswith(server): continue
            url, frag = urldefrag(link)
            if url not in checked:
                try: checked[url] = urllib.request.urlopen(url, timeout=10).status
                except urllib.error.HTTPError as e: checked[url] = e.code
            rel = url[len(server):] or 'index.html'
            if checked[url] != 200: problems.setdefault(page, []).append(f'broken link {link} ({checked[url]})')
            elif frag and rel in facts and frag not in facts[rel]['ids']:
                problems.setdefault(page, []).append(f'missing anchor #{frag} in {rel}')
    # notebook pages: code cells, stored plots, no directives, a Colab button to nbs/<name> in the repository
    for nb in notebooks:
        page, f = f'{Path(nb).stem}.html', facts[f'{Path(nb).stem}.html']
        want = f'https://colab.research.google.com/github/ft-course/ft_course/blob/main/nbs/{nb}'
        assert (ROOT/'nbs'/nb).exists()
        if f['launch'] != [want]: problems.setdefault(page, []).append(f'launch button should open {want}, opens {f["launch"]}')
        if nb != 'index.ipynb' and f['badges'] != [want]:
            problems.setdefault(page, []).append(f'"Open in Colab" badge should open {want}, opens {f["badges"]}')
        if f['directives']: problems.setdefault(page, []).append(f'{f["directives"]} code cells still show `#|` lines')
        staged = json.loads((site_build.STAGE/nb).read_text())
        n_code = sum(c['cell_type'] == 'code' and 'remove-input' not in c['metadata'].get('tags', []) for c in staged['cells'])
        if f['highlights'] < n_code or (n_code and f['cells'] == 0):
            problems.setdefault(page, []).append(f'{f["highlights"]} highlighted code cells rendered, {n_code} expected')
        if f['outputImages'] < (want_imgs := _expected_plots(site_build.STAGE/nb)):
            problems.setdefault(page, []).append(f'{f["outputImages"]} plots rendered, {want_imgs} stored')
    # search finds a word that is on the home page
    browser.send('Page.navigate', url=server + 'search.html?q=notebook'); browser.wait_event('Page.loadEventFired')
    n_hits = browser.eval('''new Promise(r => { const t0 = Date.now(); (function poll() {
        const n = document.querySelectorAll('#search-results li').length;
        if (n || Date.now() - t0 > 10000) r(n); else setTimeout(poll, 100); })(); })''')
    if not n_hits: problems['search.html'] = ['searching "notebook" found nothing']
    # screenshots: the home page, and a notebook page with its launch menu open, then its first plot
    _visit(browser, server + 'index.html'); _screenshot(browser, shots/'home.png')
    with_plot = [nb for nb in notebooks if facts[f'{Path(nb).stem}.html']['outputImages']] or notebooks[1:] or notebooks
    name = Path(with_plot[0]).stem
    _visit(browser, server + f'{name}.html')
    browser.eval('''(() => { const b = document.querySelector('.dropdown-launch-buttons button');
                    if (b) b.click(); })()''')
    time.sleep(0.3); _screenshot(browser, shots/f'{name}.png')
    browser.eval("""(() => { const b = document.querySelector('.dropdown-launch-buttons button'); if (b) b.click();
                            const i = document.querySelector('.cell_output img'); if (i) i.scrollIntoView({block: 'center'}); })()""")
    time.sleep(0.3); _screenshot(browser, shots/f'{name}_plot.png')
    api = sorted(p for p in pages if p.startswith('api/') and p != 'api/index.html')
    if api: _visit(browser, server + api[-1]); _screenshot(browser, shots/'api.png')
    print(f'\nchecked {len(pages)} pages, {len(checked)} internal URLs; screenshots in {shots}')
    if external: print('external requests (blocked here, not failures):\n  ' + '\n  '.join(sorted(external)))
    assert not problems, 'site problems:\n' + '\n'.join(f'{p}:\n  ' + '\n  '.join(e) for p, e in problems.items())


def test_redirects_resolve(site):
    "nbdev-style short URLs (linked from the module docstrings) point at pages that exist"
    for p in site.glob('*.html'):
        text = p.read_text(encoding='utf-8', errors='replace')
        if site_build.REDIRECT_MARK in text:
            target = text.split('url=', 1)[1].split('"', 1)[0]
            assert (site/target).exists(), f'{p.name} redirects to missing {target}'


_PHONE_JS = '''(() => {
  const vw = window.innerWidth, over = [];
  for (const sel of ['div.cell_output pre', 'div.output pre']) for (const e of document.querySelectorAll(sel))
    if (e.scrollWidth > e.clientWidth + 2) over.push(sel + ': ' + e.textContent.slice(0, 40));
  return {page: document.documentElement.scrollWidth - vw, outputs: over};
})()'''


def test_phone_width(site, server, browser):
    "At a phone's width (390 px) no page is wider than the screen and no stored output scrolls sideways; screenshots kept"
    shots = Path(os.environ.get('FT_SCREENSHOT_DIR') or site_build.BUILD/'screens'); shots.mkdir(parents=True, exist_ok=True)
    browser.send('Emulation.setDeviceMetricsOverride', width=390, height=844, deviceScaleFactor=2, mobile=True)
    try:
        problems = {}
        for name in ['index', '05_qlora', '10_memory', '10a_compare']:
            f, errs, _ = _visit(browser, server + f'{name}.html')
            got = browser.eval(_PHONE_JS)
            if got['page'] > 2: problems[name] = f"page is {got['page']} px wider than the screen"
            if got['outputs']: problems[name] = f"{len(got['outputs'])} outputs scroll sideways: {got['outputs'][:2]}"
            _screenshot(browser, shots/f'phone_{name}.png')
        assert not problems, problems
    finally:
        browser.send('Emulation.setDeviceMetricsOverride', width=1280, height=900, deviceScaleFactor=1, mobile=False)



_CODE_JS = '''(() => {
  const pres = [...document.querySelectorAll('div.cell_input pre, div.highlight-python pre, div.highlight-ipython3 pre')];
  const probe = document.createElement('span'); probe.textContent = 'x'.repeat(100);
  if (pres.length) { pres[0].appendChild(probe); }
  const fit = pres.length ? Math.floor(pres[0].clientWidth / (probe.getBoundingClientRect().width / 100)) : 0;
  probe.remove();
  const wide = pres.filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent.split('\\n').reduce((a, l) => Math.max(a, l.length), 0));
  return {blocks: pres.length, fit: fit, wide: wide};
})()'''


def test_laptop_width(site, server, browser):
    "At a laptop's width (1366 px) code lines of 105 characters show whole, and no code block scrolls sideways (longer lines wrap)"
    browser.send('Emulation.setDeviceMetricsOverride', width=1366, height=768, deviceScaleFactor=1, mobile=False)
    try:
        found = {}
        for page in sorted(p.name for p in Path(site).glob('[0-9]*.html')):
            _visit(browser, server + page)
            got = browser.eval(_CODE_JS)
            if got['wide'] or got['fit'] < 105: found[page] = f"{len(got['wide'])} of {got['blocks']} code blocks scroll, {got['fit']} characters fit"
        assert not found, found
    finally:
        browser.send('Emulation.setDeviceMetricsOverride', width=1280, height=900, deviceScaleFactor=1, mobile=False)
