"""Numbers in prose, tied to the stored runs they come from.

    python docs/claims.py            # list every marked number whose text differs from its source (exit 1 if any)
    python docs/claims.py --write    # rewrite those numbers from their sources (after a rerun of a benchmark)
    python docs/claims.py --unmarked # numbers with a unit and no marker: specifications, or claims still to tie

A measured number in the markdown of a notebook (or of docs/README_dev.md; README.md is generated from both) is followed
by an HTML comment naming where it comes from, e.g. `14.5×<!--claim:naive_throughput_ratio-->`. Jupyter, Colab and
the website do not show the comment. `CLAIMS` maps each name to a function that reads the value from its stored
source (a bench CSV, the summary of a comparison run, a notebook's stored output) and formats it as the prose writes
it. tests/test_claims.py fails when the text in front of a marker differs from what its source says now, when a
marker names no claim, and when a claim is used nowhere: a rerun that moves a number, or an edit of the prose, shows
up as a failing test instead of as drift.
"""
from __future__ import annotations
import csv, functools, json, re, sys
import numpy as np
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"(?P<text>[^\s|]+?)(?P<mark><!--claim:(?P<key>[\w.-]+)-->)")
TRIM = "*_`("   # bold, italics, code and an opening parenthesis around a number are not part of it


# --- sources ---------------------------------------------------------------------------------------------------------
@functools.cache
def rows(path:str)->list[dict]:
    "The rows of a CSV under the repository root"
    with open(ROOT/path, newline="") as f: return list(csv.DictReader(f))

def row(path:str, **where)->dict:
    "The one row of `path` whose columns equal `where` (e.g. `method='lora'`)"
    hits = [r for r in rows(path) if all(r[k] == v for k, v in where.items())]
    if len(hits) != 1: raise LookupError(f"{path}: {len(hits)} rows match {where}")
    return hits[0]

def summary(path:str)->dict:
    "The `Summary:` JSON of a comparison run's compare.md"
    m = re.search(r"^Summary: `(\{.*\})`$", (ROOT/path).read_text(), re.M)
    if not m: raise LookupError(f"{path} has no Summary line")
    return json.loads(m.group(1))

@functools.cache
def outputs(stem:str)->str:
    "All the stored text outputs of nbs/<stem>.ipynb, one string"
    nb = json.loads((ROOT/"nbs"/f"{stem}.ipynb").read_text())
    return "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                     for c in nb["cells"] for o in c.get("outputs", []))

def output(stem:str, pattern:str)->str:
    "Group 1 of the first match of `pattern` in the stored outputs of nbs/<stem>.ipynb"
    m = re.search(pattern, outputs(stem))
    if not m: raise LookupError(f"nbs/{stem}.ipynb: no stored output matches {pattern!r}: re-store it")
    return m.group(1)

def pct(x, nd:int=1)->str: return f"{100 * float(x):.{nd}f}%"
def times(x, nd:int=1)->str: return f"{float(x):.{nd}f}×"


# --- the claims --------------------------------------------------------------------------------------------------------
CMP, LORA, PT = "bench/results/compare_cpu/compare.csv", "bench/results/lora_cpu.csv", "bench/results/prompt_tuning_cpu.csv"
CMP_MD, ISSUE2 = "bench/results/compare_cpu/compare.md", "bench/results/issue2_cpu.csv"
def cmp(method, col): return row(CMP, method=method)[col]
def lora(config, col="dev_accuracy"): return row(LORA, config=config)[col]

CLAIMS = {
    # the comparison run (bench/results/compare_cpu): `ft-course compare --profile cpu ...`, command in its compare.md
    "naive_throughput_ratio": lambda: times(summary(CMP_MD)["throughput_ratio"]),
    "naive_memory_ratio": lambda: times(summary(CMP_MD)["memory_ratio"]),
    "naive_examples_per_s": lambda: f"{float(cmp('naive', 'examples_per_s')):.1f}",
    "full_examples_per_s": lambda: f"{float(cmp('full', 'examples_per_s')):.1f}",
    "naive_peak_gb": lambda: f"{float(cmp('naive', 'peak_mem_mb')) / 1000:.2f}",
    "full_peak_gb": lambda: f"{float(cmp('full', 'peak_mem_mb')) / 1000:.2f}",
    "naive_accuracy": lambda: pct(cmp("naive", "accuracy")),
    **{f"cmp_{m}_accuracy": (lambda m=m: pct(cmp(m, "accuracy")))
       for m in ("full", "llrd", "freeze", "lora", "qlora", "prompt_tuning")},
    **{f"cmp_{m}_peak_gb": (lambda m=m: f"{float(cmp(m, 'peak_mem_mb')) / 1000:.2f}")
       for m in ("full", "llrd", "freeze", "lora", "qlora", "prompt_tuning")},
    **{f"cmp_{m}_time_to_target": (lambda m=m: f"{float(cmp(m, 'time_to_target_s')):.0f}")
       for m in ("full", "llrd", "freeze", "lora", "qlora", "prompt_tuning")},
    "cmp_load_range": lambda: "%.1f-%.1f" % (min(float(r["load_avg_1min"]) for r in rows(CMP)), max(float(r["load_avg_1min"]) for r in rows(CMP))),
    "cmp_start_mb": lambda: "%.0f" % round(np.mean([float(r["start_mem_mb"]) for r in rows(CMP)]), -1),
    "cmp_lora_saving_gb": lambda: "%.1f" % ((float(cmp("full", "peak_mem_mb")) - float(cmp("lora", "peak_mem_mb"))) / 1000),
    **{f"cmp_{m}_s_per_step": (lambda m=m: "%.1f" % (float(cmp(m, "ms_per_step")) / 1000)) for m in ("lora", "qlora")},
    "cmp_lora_saved_mb": lambda: "%.1f" % float(cmp("lora", "saved_mb")),
    "cmp_prompt_tuning_saved_mb": lambda: "%.2f" % float(cmp("prompt_tuning", "saved_mb")),
    "cmp_full_saved_mb": lambda: "%.0f" % float(cmp("full", "saved_mb")),
    "cmp_naive_steps": lambda: "%d" % int(float(cmp("naive", "steps"))),
    "cmp_time_to_target_ratio": lambda: times(summary(CMP_MD)["time_to_target_ratio"]),
    # LoRA sweep (bench/results/lora_cpu.md)
    **{f"lora_{c}": (lambda c=c: pct(lora(c))) for c in ("r1", "r4", "r8", "r16", "r64", "r8_all", "r8_lr5e-4",
                                                          "r8_lr1e-3", "r8_head_only")},
    "lora_r8_all_trainable": lambda: f"{int(lora('r8_all', 'trainable')):,}",
    # 02: the linear probe on frozen MiniLM features, and the stored full fine-tuning run
    **{f"probe_{k}": (lambda p=p: output("02_full_finetune", p + r": '(\d+\.\d%)'"))
       for k, p in (("mean", r"'mean pooling'"), ("cls", r"'\[CLS\]'"), ("pooler", r"'pooler'"))},
    "full_cpu_accuracy": lambda: pct(output("02_full_finetune", r"'eval_accuracy': (0\.\d+)")),
    # 05: what double quantisation saves (arithmetic on the block sizes, printed by the notebook)
    "dq_bits_saved": lambda: f"{4.5 - (4 + 8 / 64 + 32 / (64 * 256)):.3f}",
    "dq_bytes_per_1000": lambda: f"{(4.5 - (4 + 8 / 64 + 32 / (64 * 256))) * 1000 / 8:.1f}",
    # full fine-tuning, LLRD and freezing, one epoch on 2,000 rows (bench/results/issue2_cpu.md)
    "issue2_full_accuracy": lambda: pct(row(ISSUE2, name="full FT, course recipe")["dev_accuracy"]),
    "issue2_full_1e-4_accuracy": lambda: pct(row(ISSUE2, name="full FT, lr 1e-4")["dev_accuracy"]),
    "issue2_llrd_accuracy": lambda: pct(row(ISSUE2, name="LLRD 0.9, head lr 1e-4")["dev_accuracy"]),
    # 03: the stored cpu run of full fine-tuning, LLRD and freezing (4,000 rows, two epochs)
    **{f"llrd_stored_{k}": (lambda r=r: pct(output("03_llrd", r + r"\s+\d+\s+[\d.]+\s+(0\.\d+)")))
       for k, r in (("full", "full fine-tuning"), ("llrd", "LLRD 0.8"), ("freeze", r"freeze embeddings \+ layer 0"))},
    **{f"llrd_stored_{k}_s": (lambda r=r: "%.0f" % float(output("03_llrd", r + r"\s+\d+\s+([\d.]+)\s+0\.\d+")))
       for k, r in (("full", "full fine-tuning"), ("llrd", "LLRD 0.8"), ("freeze", r"freeze embeddings \+ layer 0"))},
    # 04: the stored LoRA run (classifier only in modules_to_save, lr 1e-3, two epochs): the eval at each epoch's end
    **{f"lora_stored_epoch{e}": (lambda e=e: pct(output("04_lora", rf"\n\d+\s+{e}\.0\s+[\d.]+\s+(0\.\d+)")))
       for e in (1, 2)},
    # prompt tuning on MiniLM (bench/results/prompt_tuning_cpu.md)
    "pt_1ep_accuracy": lambda: pct(row(PT, name="sweep lr=0.03")["accuracy"]),
    "pt_3ep_accuracy": lambda: pct(row(PT, name="best lr=0.03, 3 epochs")["accuracy"]),
    "pt_gap_points": lambda: f"{100 * (float(row(ISSUE2, name='full FT, course recipe')['dev_accuracy']) - float(row(PT, name='best lr=0.03, 3 epochs')['accuracy'])):.1f}",
}


# --- checking and writing -------------------------------------------------------------------------------------------
def prose()->dict[str, str]:
    "Every text that may carry markers: each notebook's markdown cells (joined) and docs/README_dev.md"
    out = {}
    for p in sorted((ROOT/"nbs").glob("*.ipynb")):
        cells = json.loads(p.read_text())["cells"]
        out[f"nbs/{p.name}"] = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    out["docs/README_dev.md"] = (ROOT/"docs/README_dev.md").read_text()
    return out

def expected(key:str, claims:dict|None=None)->str:
    "The text the source of `key` gives now"
    claims = CLAIMS if claims is None else claims
    if key not in claims: raise KeyError(f"no claim named {key!r}: add it to CLAIMS in docs/claims.py")
    return claims[key]()

def check(texts:dict|None=None, # name -> text; default `prose()`
          claims:dict|None=None # default `CLAIMS`
         )->list[str]:
    "One line per marked number that differs from its source, or names no claim"
    errors = []
    for name, text in (prose() if texts is None else texts).items():
        for m in MARK.finditer(text):
            got = m["text"].strip(TRIM)
            try: want = expected(m["key"], claims)
            except (KeyError, LookupError) as e: errors.append(f"{name}: {e}"); continue
            if got != want: errors.append(f"{name}: {m['key']} says {got!r}, its source says {want!r}")
    return errors

def used(texts:dict|None=None)->set[str]:
    "The claim names that markers use"
    return {m["key"] for t in (prose() if texts is None else texts).values() for m in MARK.finditer(t)}

def _rewrite(text:str)->str:
    def sub(m):
        raw, got = m["text"], m["text"].strip(TRIM)
        try: return raw.replace(got, expected(m["key"]), 1) + m["mark"]
        except (KeyError, LookupError): return m[0]   # no source yet: left as it is, and `check` reports it
    return MARK.sub(sub, text)

def write()->int:
    "Rewrite every marked number from its source, in the notebooks and docs/README_dev.md; return the files changed"
    n = 0
    for p in sorted((ROOT/"nbs").glob("*.ipynb")):
        nb, changed = json.loads(p.read_text()), False
        for c in nb["cells"]:
            if c["cell_type"] != "markdown": continue
            old = "".join(c["source"]); new = _rewrite(old)
            if new != old: c["source"], changed = new.splitlines(True), True
        if changed: p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n"); n += 1
    dev = ROOT/"docs/README_dev.md"; old = dev.read_text(); new = _rewrite(old)
    if new != old: dev.write_text(new); n += 1
    return n


UNIT = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:%| s\b| ms\b| MB\b| GB\b| GiB\b|×)")

def unmarked(texts:dict|None=None)->dict[str, list[str]]:
    "Numbers with a unit (%, s, ms, MB, GB, GiB, ×) and no marker, with a little context: candidates to tie to a source"
    out = {}
    for name, text in (prose() if texts is None else texts).items():
        found = [text[max(0, m.start() - 30):m.end() + 5].replace("\n", " ") for m in UNIT.finditer(text)
                 if not text.startswith("<!--claim:", m.end())]
        if found: out[name] = found
    return out

if __name__ == "__main__":
    if "--unmarked" in sys.argv:
        for name, found in unmarked().items(): print(f"{name}: {len(found)}\n  " + "\n  ".join(found))
        sys.exit(0)
    if "--write" in sys.argv: print(f"rewrote numbers in {write()} file(s); now run `python docs/make_readme.py`")
    errs = check()
    print("\n".join(errs) or f"all {sum(len(MARK.findall(t)) for t in prose().values())} marked numbers match their sources")
    sys.exit(1 if errs else 0)
