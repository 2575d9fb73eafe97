"Tests for the ft-course command line: help, clean errors (no traceback), memory and compare end to end"
import os, subprocess, sys

import pytest

from ft_course.cli import main


def _cli(*args, timeout=120):
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    env.pop("FT_COURSE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ft_course.cli", *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("args", [["--help"], ["compare", "--help"], ["memory", "--help"]])
def test_help(args, capsys):
    with pytest.raises(SystemExit) as e: main(args)
    assert e.value.code == 0 and "usage: ft-course" in capsys.readouterr().out


@pytest.mark.parametrize("args, code, needle", [
    (["memory", "--config", "no/such/config.json"], 1, "does not exist"),
    (["memory", "--config", "Qwen2.5-0.5B", "--method", "freeze"], 1, "frozen_layers"),
    (["memory", "--config", "Qwen2.5-0.5B", "--batch-size", "0"], 1, "batch_size"),
    (["compare", "--methods", "dora"], 1, "dora"),
    (["compare", "--profile", "laptop"], 1, "laptop"),
    (["compare", "--max-steps", "0"], 1, "max_steps"),
    (["memory", "--config", "Qwen2.5-0.5B", "--method", "magic"], 2, "invalid choice"),
    (["compare", "--epochs", "two"], 2, "invalid float"),
    ([], 2, "required"),
])
def test_clean_errors(args, code, needle, capsys, monkeypatch):
    monkeypatch.delenv("FT_COURSE_DEBUG", raising=False)
    try: got = main(args)
    except SystemExit as e: got = e.code
    err = capsys.readouterr().err
    assert got == code, err
    assert needle in err and "Traceback" not in err
    if code == 1: assert err.startswith("error: ") and len(err.strip().splitlines()) == 1   # our errors: one line


@pytest.mark.parametrize("args, code, needle", [
    (["memory", "--config", "{bad}"], 1, "not valid JSON"),
    (["compare", "--methods", "dora"], 1, "dora"),
    (["compare", "--epochs", "two"], 2, "invalid float"),
])
def test_console_errors(tmp_path, args, code, needle):
    "As a user sees it: a fresh process, exit code, one message, no traceback"
    (tmp_path/"config.json").write_text("{not json")
    r = _cli(*[str(tmp_path/"config.json") if a == "{bad}" else a for a in args])
    assert r.returncode == code, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_memory_prints_estimate_and_table(capsys):
    assert main(["memory", "--config", "Llama-3.2-1B", "--method", "qlora", "--gradient-checkpointing", "--gpu-memory-gb", "8"]) == 0
    out = capsys.readouterr().out
    assert "GiB peak" in out and "8 GiB" in out and "Llama-3.1-8B" in out


def test_memory_local_config(tmp_path, capsys):
    from ft_course.setup import build_tiny_classifier
    cfg = build_tiny_classifier()/"config.json"
    assert main(["memory", "--config", str(cfg), "--task", "seq_cls", "--method", "full", "--no-table"]) == 0
    assert "GiB peak" in capsys.readouterr().out


def test_compare_writes_outputs(tmp_path, capsys):
    assert main(["compare", "--methods", "full", "lora", "--max-steps", "2", "--in-process", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "lora" in out and (tmp_path/"compare.csv").exists() and (tmp_path/"memory.png").exists()
    assert "ft-course compare --methods full lora" in (tmp_path/"compare.md").read_text()
