"""Colab readiness: every course notebook opens with its badge, a Colab-only install cell and the device check; each
check's gpu-profile run fits a free T4 by the estimate, agrees with the sizes the notebook's code uses, and agrees with
the instructor guide's table; and the check picks fp16 and warns with fixes on a (simulated) T4."""
import json, re, warnings
from pathlib import Path

import pytest, torch

import ft_course.memory as memory
from ft_course.setup import _make_profile

ROOT = Path(__file__).resolve().parents[1]
COURSE = sorted(p for p in (ROOT/"nbs").glob("[01][0-9]_*.ipynb") if p.stem != "12_instructor_guide")
MARK = "from ft_course.memory import check_device"


def _cells(path): return json.loads(path.read_text(encoding="utf-8"))["cells"]
def _src(c): return "".join(c["source"])


def _checks(path):
    "Run the notebook's check cell here (no GPU) and return the keyword arguments and results of each check_device call"
    calls = []
    def spy(model=None, device_memory_gib=None, **spec):
        calls.append((model, spec, memory.check_device(model, device_memory_gib, **spec)))
    cell = next(_src(c) for c in _cells(path) if MARK in _src(c))
    exec(cell.replace(MARK, ""), {"check_device": spy})
    return calls


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_notebook_opens_with_badge_install_and_check(path):
    cells = _cells(path)
    badge = next((i for i, c in enumerate(cells) if "colab-badge.svg" in _src(c)), None)
    assert badge is not None and badge <= 2, f"{path.name}: the Open in Colab badge should come right after the title"
    assert f"/blob/main/nbs/{path.name}" in _src(cells[badge]), f"{path.name}: the badge opens another notebook"
    install, check = cells[badge + 1], cells[badge + 2]
    assert _src(install).startswith("#| eval: false") and '"google.colab" in sys.modules' in _src(install), (
        f"{path.name}: the cell after the badge should be the Colab-only install cell, flagged `#| eval: false`")
    assert MARK in _src(check), f"{path.name}: the cell after the install cell should be the device check"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_gpu_defaults_fit_a_t4(path):
    for model, spec, res in _checks(path):
        assert res["precision"] == "fp32" and not res["gpu"]      # this machine: no GPU, so fp32 here...
        if model: assert res["fits"], f"{path.name}: {model} {spec} needs {res['estimate_gib']} GiB, more than a T4"


def _one(stem):
    (model, spec, res), *_ = _checks(ROOT/"nbs"/f"{stem}.ipynb")
    return spec


def test_checks_match_the_code():
    "Each check estimates the sizes the notebook really trains with in the gpu profile"
    gpu = _make_profile("gpu")
    for stem in ("02_full_finetune", "03_llrd", "06_prompt_tuning", "08_monitoring", "09_compare"):
        s = _one(stem)
        assert (s["batch_size"], s["seq_len"]) == (16, gpu.max_length), stem
    assert gpu.per_device_train_batch_size == 16
    s, g = _one("07_sft"), gpu.sft_kwargs()
    assert (s["batch_size"], s["seq_len"], s["gradient_checkpointing"]) == (
        g["per_device_train_batch_size"], g["max_length"], g["activation_checkpointing"])
    lm = gpu.causal_lm_kwargs()
    for stem in ("04_lora", "05_qlora"):   # the causal-LM runs take the profile's causal-LM batch split
        assert _one(stem)["batch_size"] == lm["per_device_train_batch_size"], stem
        assert "prof.causal_lm_kwargs()" in (ROOT/"nbs"/f"{stem}.ipynb").read_text(), stem


def test_instructor_guide_quotes_the_checks():
    guide = "\n".join(_src(c) for c in _cells(ROOT/"nbs"/"12_instructor_guide.ipynb"))
    for path in COURSE:
        row = next(l for l in guide.splitlines() if l.startswith(f"| [{path.stem[:2]} "))
        quoted = re.findall(r"(\d+\.\d) GiB", row.split("|")[-2])
        got = [f"{res['estimate_gib']:.1f}" for m, s, res in _checks(path) if m]
        assert quoted == got, f"guide row for {path.stem} says {quoted} GiB, the notebook's check says {got}"


@pytest.fixture
def fake_t4(monkeypatch):
    class Props: name, total_memory, major, minor = "Tesla T4", 15360 * 2**20, 7, 5
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: Props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (15000 * 2**20, Props.total_memory))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)


def test_t4_gets_fp16_and_a_warning_with_fixes(fake_t4, capsys):
    ok = memory.check_device("bert-base-uncased", method="full", task="seq_cls", batch_size=16, seq_len=512)
    out = capsys.readouterr().out
    assert ok["precision"] == "fp16" and ok["gpu"] and ok["fits"]
    assert "Tesla T4" in out and "has no bf16" in out and "of this GPU's 15.0 GiB" in out
    with pytest.warns(UserWarning, match="will not fit") as w:   # 07's old default: batch 8 x 1,024 tokens
        bad = memory.check_device("Qwen/Qwen2.5-0.5B-Instruct", method="lora", task="causal_lm", batch_size=8,
                                  seq_len=1024, lora_r=8, gradient_checkpointing=True)
    assert not bad["fits"] and bad["estimate_gib"] > 15
    msg = str(w[0].message)
    assert "per_device_train_batch_size=4" in msg and "gradient_accumulation_steps" in msg and "max_length" in msg
    assert "qlora" in msg                                   # the 4-bit option
    assert "gradient_checkpointing=True" not in msg         # already on: not suggested again


def test_device_only_check(capsys):
    res = memory.check_device()
    assert set(res) == {"gpu", "precision", "gpu_memory_gib"} and "No CUDA GPU" in capsys.readouterr().out


def test_given_memory_is_named_as_such(capsys):
    with pytest.warns(UserWarning, match="will not fit"):
        res = memory.check_device("bert-base-uncased", device_memory_gib=4, method="full", task="seq_cls", batch_size=16, seq_len=512)
    assert not res["fits"] and res["available_gib"] == 4.0 and "of the device's 4.0 GiB" in capsys.readouterr().out
