"""Re-run notebooks and store their outputs, each in the profile the website shows it in, then clean the metadata.

    python docs/store_outputs.py                 # every notebook (about 25 minutes on 2 CPU cores)
    python docs/store_outputs.py 04_lora 08_monitoring

The website executes nothing: it renders what the notebooks store. So the stored outputs must come from real runs: the
`cpu` profile (the pretrained MiniLM classifier, and SmolLM2-135M-Instruct for the language-model notebooks 04-07)
wherever a notebook trains a model, and the `tiny` profile only where a real run adds nothing (`TINY_BECAUSE`). tests/test_docs.py checks that each notebook's stored profile is this one.
"""
import json, os, re, subprocess, sys, sysconfig, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STORED_PROFILE = {"00_setup": "cpu", "00a_vocabulary": "cpu", "01_data": "cpu", "01a_measure": "cpu", "02_full_finetune": "cpu", "03_llrd": "cpu", "04_lora": "cpu",
                  "05_qlora": "cpu", "06_prompt_tuning": "cpu", "07_sft": "cpu", "07a_evaluation": "cpu", "07b_dpo": "tiny", "07c_adapters": "tiny",
                  "08_monitoring": "cpu",
                  "10_memory": "cpu", "10a_compare": "tiny", "10b_own_data": "cpu", "10c_seeds": "tiny", "10d_scale": "tiny", "11_cli": "cpu", "12_instructor_guide": "tiny"}
TINY_BECAUSE = {"07c_adapters": "it walks every path on the tiny models in seconds; the cpu result (two adapters and four merges, ~22 min) is bench/adapters_cpu.py, which it reads",
                "07b_dpo": "it walks every path on the tiny models; the cpu result (a learning-rate selection, then three seeds: ~90 min) is bench/dpo_cpu.py, which it reads",
                "10a_compare": "it runs the tiny subset and reads the measured cpu table from bench/results",
                "10d_scale": "its estimates need no model, and its 2-process runs use the tiny classifier in every profile (the stored DDP curves are read from bench/results)",
                "10c_seeds": "it runs a smoke test on the tiny models and reads the measured cpu result from bench/results",
                "12_instructor_guide": "its cells only reproduce error messages, on the tiny models"}


def store(name:str)->float:
    "Run one notebook in its stored profile with `nbdev-test --save`; return the seconds it took"
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}   # set, transformers prints "[INFO] Running in WANDB offline mode"
    env |= dict(FT_PROFILE=STORED_PROFILE[name], HF_HUB_OFFLINE="1",   # setup_env sets W&B offline without a key
                            HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg")
    t0 = time.time()
    subprocess.run(["nbdev-test", f"nbs/{name}.ipynb", "--save", "--cell-timeout", "0"], cwd=ROOT, env=env, check=True)
    return time.time() - t0


# What a reader should not see in a stored output, and what replaces it. Paths of this machine become the names a
# reader can map to their own (`~`, `<site-packages>`, `<tmp>`, `..` for the folder above the repository); a progress
# bar is every redraw of a line kept as text, so its lines go (libraries' bars are switched off at the source by
# `setup_env`; this catches the rest). Warnings are not removed here: they are fixed where they come from, and
# tests/test_docs.py fails on any that is stored.
BAR = re.compile(r"^.*(\d+%\|.*\||\d+/\d+ \[\d\d:\d\d|it/s\]|examples/s\]).*$", re.M)

def _path_subs()->list:
    "(prefix, replacement) pairs, longest prefix first"
    site = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    subs = [(s, "<site-packages>") for s in site] + [(str(ROOT), "."), (str(ROOT.parent), ".."),
            (tempfile.gettempdir().rstrip("/"), "<tmp>"), (str(Path.home()), "~")]
    return sorted(subs, key=lambda s: -len(s[0]))

def tidy_text(text:str, subs:list|None=None)->str:
    "`text` with machine paths replaced and progress-bar lines removed"
    for prefix, repl in subs or _path_subs(): text = re.sub(re.escape(prefix) + r"(?=/|\b)", repl, text)
    return re.sub(r"\n{2,}", "\n", BAR.sub("", text.replace("\r", "\n"))).lstrip("\n") if BAR.search(text) else text

def tidy_outputs(path:Path)->int:
    "Tidy the stored outputs of one notebook in place (see `tidy_text`); drop outputs left empty; return how many changed"
    nb, subs, changed = json.loads(path.read_text()), _path_subs(), 0
    for c in nb["cells"]:
        keep = []
        for o in c.get("outputs", []):
            for key, holder in (("text", o), ("text/plain", o.get("data", {}))):
                if key not in holder: continue
                old = "".join(holder[key]); new = tidy_text(old, subs)
                if new != old: holder[key], changed = new.splitlines(True), changed + 1
            if o.get("output_type") != "stream" or "".join(o.get("text", "")).strip(): keep.append(o)
        if "outputs" in c: c["outputs"] = keep
    if changed: path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed


TIMES = ROOT/"docs"/"store_times.json"   # how long each notebook took to store: the "What it costs" claims read it

def record_time(name:str, secs:float, path:Path=TIMES)->dict:
    "Add this store's wall time, profile, date and load average to `path`; return the whole record"
    times = json.loads(path.read_text()) if path.exists() else {}
    times[name] = dict(profile=STORED_PROFILE[name], seconds=round(secs), date=time.strftime("%Y-%m-%d"),
                       load_avg_1min=round(os.getloadavg()[0], 1))
    path.write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n")
    return times


if __name__ == "__main__":
    names = sys.argv[1:] or list(STORED_PROFILE)
    unknown = [n for n in names if n not in STORED_PROFILE]
    if unknown: sys.exit(f"unknown notebook(s) {unknown}: use names from {list(STORED_PROFILE)}")
    for n in names:
        secs = store(n); record_time(n, secs)
        print(f"{n}: {STORED_PROFILE[n]} profile, {secs:.0f} s, {tidy_outputs(ROOT/'nbs'/f'{n}.ipynb')} outputs tidied", flush=True)
    subprocess.run(["nbdev-clean"], cwd=ROOT, check=True)
