"""The method comparison with its learning rates chosen on a selection split and its numbers over three seeds (notebook 10c).

    python bench/compare_seeds.py --profile cpu --out bench/results/compare_seeds_cpu

1. `select_learning_rates`: each method at 1/3, 1 and 3 times its registered rate, trained on the comparison's 2,000
   training rows and scored on 872 other rows of SST-2's train split (QLoRA takes LoRA's rate), then one step of 3
   further while the best rate sits at the edge of what was tried (at most twice): selection.csv.
2. `run_seeds`: the comparison at the selected rates, once per seed, scored on the dev set: seed<N>/ and seeds.csv.
3. seeds.md: the command, the selected rates, the mean±sd table and which differences exceed the spread.

A step already on disk (selection.csv, seed<N>/compare.csv at the same rates) is reused, so an interrupted run resumes;
methods missing from a seed's compare.csv (dora and rslora, added later) are run alone (into added/seed<N>/) and appended.
"""
import argparse, json, os, sys, time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
from ft_course.setup import setup_env
from ft_course.compare import CompareConfig
from ft_course.seeds import best_rates, leader, rate_grid, run_seeds, seed_table, select_learning_rates

def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--methods", nargs="+", default=["full", "llrd", "freeze", "lora", "qlora", "prompt_tuning", "dora", "rslora"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2])
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--evals-per-epoch", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=None, help="quick probes only")
    ap.add_argument("--out", default="bench/results/compare_seeds_cpu")
    return ap.parse_args(argv)

def main(argv=None):
    a = parse(argv)
    setup_env()
    out, t0 = Path(a.out), time.time()
    base = CompareConfig(profile=a.profile, methods=a.methods, num_train_epochs=a.epochs, evals_per_epoch=a.evals_per_epoch,
                         max_steps=a.max_steps, out=str(out))
    tried = pd.read_csv(out/"selection.csv") if (out/"selection.csv").exists() else None
    sel = select_learning_rates(base, rate_grid(base), out=out/"select", tried=tried)   # the grid, then past its edges
    out.mkdir(parents=True, exist_ok=True); sel.to_csv(out/"selection.csv", index=False)
    rates = best_rates(sel)
    print("selected:", rates, flush=True)
    cfg = replace(base, learning_rates=rates)
    frames = []
    for s in a.seeds:
        f = out/f"seed{s}"/"compare.csv"
        old = pd.read_csv(f) if f.exists() else None
        if old is None or dict(zip(old.method, old.learning_rate)) != {m: rates.get(m) for m in old.method}:
            run_seeds(cfg, [s])
        elif missing := [m for m in a.methods if m not in set(old.method)]:     # new methods: run them alone, append their rows
            run_seeds(replace(cfg, methods=missing, out=str(out/"added")), [s])
            pd.concat([old, pd.read_csv(out/"added"/f"seed{s}"/"compare.csv")], ignore_index=True).to_csv(f, index=False)
        df = pd.read_csv(f)
        frames.append(df[df.method.isin(a.methods)].assign(seed=s))
    runs = pd.concat(frames, ignore_index=True)
    runs.to_csv(out/"seeds.csv", index=False)
    table = seed_table(runs)
    grid = "\n".join(f"- {m}: " + ", ".join(f"{r:.2g} → {100 * x:.1f}%" + (" (chosen)" if r == rates[m] else "")
                                            for r, x in zip(g.learning_rate, g.selection_accuracy))
                     for m, g in sel.sort_values(["method", "learning_rate"]).groupby("method", sort=False))
    lead = {c: leader(runs, c, higher=(c == "accuracy")) for c in ("accuracy", "time_to_target_s", "peak_mem_mb")}
    cmd = "python bench/compare_seeds.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (out/"seeds.md").write_text(
        f"# Method comparison over {len(a.seeds)} seeds ({a.profile} profile)\n\nCommand: `{cmd.strip()}`\n\n"
        f"Config: `{json.dumps(asdict(cfg))}`\n\nSelected rates (selection split, never the dev set): `{json.dumps(rates)}`\n\n"
        f"Selection accuracy by rate:\n\n{grid}\n\nDev set, mean±sd over seeds {a.seeds}:\n\n{table.to_string()}\n\n"
        f"Best beyond the spread (None: no method): `{json.dumps(lead)}`\n\n"
        f"Wall time {time.time() - t0:.0f} s; load average at the end {os.getloadavg()[0]:.1f}\n")
    print((out/"seeds.md").read_text())

if __name__ == "__main__": main()
