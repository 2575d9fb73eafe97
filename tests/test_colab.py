"""Colab readiness: every course notebook opens with its badge, a Colab-only install cell and the device report
(`ft_course.vocabulary.check_device`) for its own gpu-profile run; each run in `GPU_RUNS` belongs to a notebook, fits a
free T4 by its stored estimate, agrees with the sizes the gpu profile trains with, and agrees with the instructor guide's
table; and the report picks fp16 and warns with a fix on a (simulated) T4."""
import json, re, subprocess, sys, types
from unittest import mock
from pathlib import Path

import pytest, torch

import ft_course.vocabulary as vocabulary
from ft_course.vocabulary import GPU_RUNS, T4_GIB, check_device
from ft_course.setup import _gpu_profile

ROOT = Path(__file__).resolve().parents[1]
COURSE = sorted(p for p in (ROOT/"nbs").glob("[0-9][0-9]*_*.ipynb") if p.stem != "12_instructor_guide")   # 00a, 01a, 07a too
# 00 and 00a come before the report exists: 00 builds what it reads (device_and_precision), 00a defines and demonstrates it
NO_REPORT = {"00_setup", "00a_vocabulary"}
EXTRA_RUNS = {"05_qlora_7b"}   # a second run of notebook 05 (its optional 7B section), reported by 05's first cell too


def _cells(path): return json.loads(path.read_text(encoding="utf-8"))["cells"]
def _src(c): return "".join(c["source"])


def _opening(path):
    "(badge cell index, install cell, the cell after it)"
    cells = _cells(path)
    badge = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "colab-badge.svg" in _src(c)), None)
    assert badge is not None and badge <= 2, f"{path.name}: the Open in Colab badge should come right after the title"
    return badge, cells[badge], cells[badge + 1], cells[badge + 2]


def _runs_reported(path):
    "Run the notebook's report cell here, with `check_device` spied on; return the `run` of each call and its result"
    calls = []
    def spy(run=None, device_memory_gib=None):
        calls.append((run, check_device(run, device_memory_gib)))
        return calls[-1][1]
    *_, cell = _opening(path)
    with mock.patch.object(vocabulary, "check_device", spy): exec(_src(cell), {})
    return calls


def _expected_runs(stem): return [k for k in GPU_RUNS if k == stem or k.startswith(stem + "_")] or [None]


def test_course_glob_includes_lettered_notebooks():
    stems = {p.stem for p in COURSE}
    assert {"00a_vocabulary", "01a_measure", "07a_evaluation", "00_setup", "11_cli"} <= stems
    assert "12_instructor_guide" not in stems and "index" not in stems


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_notebook_opens_with_badge_and_colab_only_install(path):
    badge, badge_cell, install, _ = _opening(path)
    assert f"/blob/main/nbs/{path.name}" in _src(badge_cell), f"{path.name}: the badge opens another notebook"
    assert install["cell_type"] == "code" and _src(install).startswith("#| eval: false"), (
        f"{path.name}: the cell after the badge should be the install cell, flagged `#| eval: false` (nbdev-test skips it)")
    ran = []
    fake_run = lambda cmd, **kw: ran.append(cmd)
    with mock.patch.object(subprocess, "run", fake_run), mock.patch.dict(sys.modules):
        sys.modules.pop("google.colab", None)
        exec(_src(install), {})                                   # not on Colab: installs nothing
        assert ran == [], f"{path.name}: the install cell runs outside Colab"
        sys.modules["google.colab"] = types.ModuleType("google.colab")
        exec(_src(install), {})                                   # on Colab: pip installs the course
    assert len(ran) == 1 and ran[0][1:4] == ["-m", "pip", "install"] and any("ft_course" in a for a in ran[0]), ran


@pytest.mark.parametrize("path", [p for p in COURSE if p.stem not in NO_REPORT], ids=lambda p: p.stem)
def test_first_cell_reports_this_notebooks_run(path, capsys):
    "The cell after the install cell calls `ft_course.vocabulary.check_device` with the notebook's own runs (or none)"
    calls = _runs_reported(path)
    assert [run for run, _ in calls] == _expected_runs(path.stem), (
        f"{path.name}: its first cell should call check_device({_expected_runs(path.stem)}), it called {[r for r, _ in calls]}")
    out = capsys.readouterr().out
    assert out.startswith("GPU: " if torch.cuda.is_available() else "No CUDA GPU")
    for run, res in calls:
        if torch.cuda.is_available(): assert res["gpu"] and res["precision"] in ("bf16", "fp16")
        else: assert not res["gpu"] and res["precision"] == "fp32"
        if run: assert res["fits"], f"{path.name}: the {run} run needs {res['estimate_gib']} GiB, more than {res['available_gib']}"


@pytest.mark.parametrize("path", [p for p in COURSE if p.stem in NO_REPORT], ids=lambda p: p.stem)
def test_notebooks_before_the_report_train_nothing_on_a_gpu(path):
    "00 and 00a open without the report: so they must have no gpu-profile run to report"
    assert _expected_runs(path.stem) == [None]


def test_every_run_belongs_to_a_notebook_and_fits_a_t4():
    stems = {p.stem for p in COURSE}
    assert not set(GPU_RUNS) - EXTRA_RUNS - stems, f"GPU_RUNS keys with no notebook: {set(GPU_RUNS) - EXTRA_RUNS - stems}"
    assert all(any(e.startswith(s + "_") for s in stems) for e in EXTRA_RUNS)
    for run, r in GPU_RUNS.items():
        assert r["estimate_gib"] <= T4_GIB, f"{run}: {r['estimate_gib']} GiB does not fit a T4"
        assert check_device(run, device_memory_gib=T4_GIB)["fits"], run


def test_runs_match_the_gpu_profile():
    "Each stored run estimates the sizes the notebook really trains with in the gpu profile"
    gpu = _gpu_profile("cuda", "fp16")
    for stem in ("02_full_finetune", "03_llrd", "06_prompt_tuning", "08_monitoring", "10a_compare"):   # the classifier runs
        r = GPU_RUNS[stem]
        assert (r["model"], r["task"], r["batch_size"], r["seq_len"]) == (
            gpu.classifier, "seq_cls", gpu.per_device_train_batch_size, gpu.max_length), stem
    from ft_course.compare import METHOD_CONFIGS
    naive = METHOD_CONFIGS["naive"]          # 10a's largest run: the naive recipe, fp32, batch 16, padded to BERT's 512
    assert (GPU_RUNS["10a_compare"]["precision"], GPU_RUNS["10a_compare"]["batch_size"]) == ("fp32", naive.per_device_train_batch_size)
    assert naive.fp32 and naive.pad_to_max_length
    lm = gpu.causal_lm_kwargs()
    for stem in ("04_lora", "05_qlora"):   # the causal-LM runs take the profile's causal-LM batch split
        r = GPU_RUNS[stem]
        assert (r["model"], r["task"], r["batch_size"], r["seq_len"]) == (
            gpu.causal_lm, "causal_lm", lm["per_device_train_batch_size"], gpu.max_length), stem
        assert r["batch_size"] * lm["gradient_accumulation_steps"] == gpu.per_device_train_batch_size
    s, sft = GPU_RUNS["07_sft"], gpu.sft_kwargs()
    assert (s["model"], s["batch_size"], s["seq_len"], s["gradient_checkpointing"]) == (
        gpu.causal_lm, sft["per_device_train_batch_size"], sft["max_length"], sft["activation_checkpointing"])
    e, ev = GPU_RUNS["07a_evaluation"], gpu.evaluation
    assert (e["model"], e["batch_size"], e["seq_len"]) == (gpu.causal_lm, ev["per_device_train_batch_size"], ev["max_length"])


def test_instructor_guide_quotes_the_runs():
    "Each row of the guide's timing table quotes the estimates of its notebook's runs; every numbered notebook has a row"
    guide = "\n".join(_src(c) for c in _cells(ROOT/"nbs"/"12_instructor_guide.ipynb"))
    rows = {m.group(1): l for l in guide.splitlines() for m in [re.match(r"\| \[[^\]]+\]\((\w+)\.ipynb\)", l)] if m}
    assert {p.stem for p in COURSE if re.fullmatch(r"\d\d_\w+", p.stem)} <= set(rows), "a numbered notebook has no guide row"
    for stem, row in rows.items():
        quoted = re.findall(r"(\d+\.\d) GiB", row.split("|")[-2])
        want = [f"{GPU_RUNS[r]['estimate_gib']:.1f}" for r in _expected_runs(stem) if r]
        assert quoted == want, f"guide row for {stem} says {quoted} GiB, GPU_RUNS says {want}"


@pytest.fixture
def fake_t4(monkeypatch):
    class Props: name, total_memory, major, minor = "Tesla T4", 15360 * 2**20, 7, 5
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: Props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (15000 * 2**20, Props.total_memory))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)


def test_t4_gets_fp16_and_a_warning_with_a_fix(fake_t4, capsys):
    ok = check_device("02_full_finetune")
    out = capsys.readouterr().out
    assert ok["precision"] == "fp16" and ok["gpu"] and ok["fits"] and ok["gpu_memory_gib"] == 15.0
    assert "Tesla T4" in out and "has no bf16" in out and "of this GPU's 15.0 GiB" in out
    with pytest.warns(UserWarning, match="halve per_device_train_batch_size") as w:   # a smaller device, named as such
        bad = check_device("07_sft", device_memory_gib=4)
    assert not bad["fits"] and bad["available_gib"] == 4.0 and "of the device's 4.0 GiB" in capsys.readouterr().out
    assert "ft-course memory --config Qwen/Qwen2.5-0.5B-Instruct --method lora --batch-size 4 --seq-len 1024" in str(w[0].message)
