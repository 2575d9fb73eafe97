"bench/gpu_check.py: its CPU smoke mode runs every section's logic; FLOPs, peak table and report are checked against the issue's numbers."
import importlib.util, json, sys
from pathlib import Path
import pandas as pd, pytest

ROOT = Path(__file__).parent.parent
spec = importlib.util.spec_from_file_location("gpu_check", ROOT/"bench/gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec); spec.loader.exec_module(gpu_check)

def test_mfu_formula_reproduces_the_issue():
    "Issue 14: Llama-3.2-1B, 1,024 tokens, 41.0k tokens/s on an H100/H200 = 32.4% MFU"
    fpt = gpu_check.flops_per_token("Llama-3.2-1B", 1024)
    assert gpu_check.peak_flops("NVIDIA H200") == gpu_check.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_check.peak_flops("NVIDIA A100-SXM4-80GB") == 312e12 and gpu_check.peak_flops("Tesla T4") == 65e12
    assert gpu_check.peak_flops("Some Future GPU") is None
    assert round(100 * 41_000 * fpt / 989e12, 1) == 32.4

def test_cpu_smoke_runs_every_section(tmp_path):
    gpu_check.main(["--cpu-smoke", "--out", str(tmp_path)])
    df = pd.read_csv(tmp_path/"gpu_cpu_smoke.csv")
    assert set(df.section) == {"mem", "speed", "cells"}
    assert (df.status == "ok").all(), df[df.status != "ok"][["name", "error"]].to_string()
    assert {"qlora", "full", "lora", "prompt_tuning"} <= set(df[df.section == "mem"].method)
    assert (df[df.section == "speed"].tokens_per_s > 0).all()
    assert (df[df.section == "mem"].predicted_gib > 0).all()
    md = (tmp_path/"gpu_cpu_smoke.md").read_text()
    assert "## Memory" in md and "## Speed" in md and "#| cuda" in md and "--cpu-smoke" in md
    meta = json.loads((tmp_path/"gpu_cpu_smoke.json").read_text())
    assert meta["versions"]["transformers"] and meta["date"]

def test_stored_h200_report_is_current():
    "The stored report's predictions are what the current estimator gives (rerun --report after changing the estimator)"
    df = pd.read_csv(ROOT/"bench/results/gpu_NVIDIA_H200.csv")
    rows = df[(df.section == "mem") & (df.status == "ok")]
    assert len(rows) >= 8
    for _, r in rows.iterrows():
        s = gpu_check.MemorySpec(method=r.method, batch_size=int(r.batch_size), seq_len=int(r.seq_len), precision=r.precision,
                                 optimizer=r.optimizer, gradient_checkpointing=bool(r.gradient_checkpointing),
                                 lora_r=json.loads(r.settings)["lora_r"], device="cuda")
        assert abs(gpu_check.predicted(r.model, s) - r.predicted_gib) < 0.01, r["name"]
