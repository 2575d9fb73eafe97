"Tests for the ft-course command line: help, clean errors (no traceback), memory and compare end to end"
import dataclasses, os, re, subprocess, sys

import pytest

from ft_course.cli import main


def _cli(*args, timeout=120, env=None):
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"} | (env or {})
    env.pop("FT_COURSE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ft_course.cli", *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("args", [["--help"], ["compare", "--help"], ["memory", "--help"]])
def test_help(args, capsys):
    with pytest.raises(SystemExit) as e: main(args)
    assert e.value.code == 0 and "usage: ft-course" in capsys.readouterr().out


def test_top_level_help_is_quick_and_quiet():
    "`ft-course --help` builds no subcommand's options, so it imports no torch: it answers at once and prints only the help"
    import time
    t0 = time.perf_counter(); r = _cli("--help"); took = time.perf_counter() - t0
    assert r.returncode == 0 and r.stdout.startswith("usage: ft-course") and r.stderr == "", r.stderr
    assert "compare" in r.stdout and "memory" in r.stdout
    assert took < 3, f"`ft-course --help` took {took:.1f} s: something imports torch before the options are parsed"


@pytest.mark.parametrize("cmd", ["compare", "memory"])
def test_subcommand_help_prints_nothing_else(cmd):
    "A subcommand's help imports the training code; no library notice (e.g. bitsandbytes' CPU-kernel one) may reach stderr"
    r = _cli(cmd, "--help", env={"WANDB_MODE": "", "PYTHONWARNINGS": ""})   # as a user runs it (transformers itself prints a line on import when W&B is offline)
    assert r.returncode == 0 and r.stdout.startswith(f"usage: ft-course {cmd}") and r.stderr == "", (r.stdout[:300], r.stderr)


@pytest.mark.parametrize("args, code, needle", [
    (["memory", "--config", "no/such/config.json"], 1, "does not exist"),
    (["memory", "--config", "Qwen2.5-0.5B", "--method", "freeze"], 1, "frozen_layers"),
    (["memory", "--config", "Qwen2.5-0.5B", "--batch-size", "0"], 1, "batch_size"),
    (["compare", "--methods", "vera"], 1, "vera"),
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
    (["compare", "--methods", "vera"], 1, "vera"),
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


def _fields():
    "(subcommand, dataclass, required arguments) of each subcommand generated from a config dataclass"
    from ft_course.compare import CompareConfig
    from ft_course.memory import MemorySpec
    return [("compare", CompareConfig, []), ("memory", MemorySpec, ["--config", "x"])]


@pytest.mark.parametrize("name, cls, extra", _fields(), ids=["compare", "memory"])
def test_every_field_is_an_option_with_its_default(name, cls, extra):
    "Each field of the dataclass parses, with no options given, to the dataclass default (one source of defaults)"
    from ft_course.cli import config_from, make_parser
    ns = make_parser().parse_args([name, *extra])
    for f in dataclasses.fields(cls): assert getattr(ns, f.name) == getattr(cls(), f.name), f.name
    assert config_from(cls, ns) == cls()


@pytest.mark.parametrize("name, cls, extra", _fields(), ids=["compare", "memory"])
def test_help_shows_each_field_comment(name, cls, extra, capsys):
    "`--help` lists `--foo-bar` (or `--no-foo-bar`) for each field `foo_bar`, with the field's comment as its help"
    from fastcore.docments import docments
    with pytest.raises(SystemExit): main([name, "--help"])
    out = capsys.readouterr().out
    flat = "".join(out.split())                       # argparse wraps lines (and breaks at hyphens)
    for f in dataclasses.fields(cls):
        assert re.search(rf"--(no-)?{f.name.replace('_', '-')}\b", out), f.name   # a bool on by default: --no-foo
        doc = docments(cls).get(f.name)
        if doc: assert "".join(doc.replace("None: ", "default: ").split()) in flat, f"{f.name}: {doc!r}"


def test_options_reach_the_dataclass():
    "Aliases, flags and lists end up in the config: --epochs, --in-process, --lora-targets"
    from ft_course.cli import config_from, make_parser
    from ft_course.compare import CompareConfig
    from ft_course.memory import MemorySpec
    p = make_parser()
    got = config_from(CompareConfig, p.parse_args(["compare", "--epochs", "3", "--in-process", "--methods", "lora", "full", "--seed", "1"]))
    assert got == CompareConfig(num_train_epochs=3, isolate=False, methods=["lora", "full"], seed=1)
    assert p.parse_args(["compare", "--num-train-epochs", "3", "--no-isolate"]) == p.parse_args(["compare", "--epochs", "3", "--in-process"])
    ns = p.parse_args(["memory", "--config", "x", "--lora-targets", "q_proj", "v_proj", "--gradient-checkpointing", "--method", "lora"])
    assert config_from(MemorySpec, ns) == MemorySpec(method="lora", lora_targets=["q_proj", "v_proj"], gradient_checkpointing=True)
    assert config_from(MemorySpec, p.parse_args(["memory", "--config", "x", "--lora-targets", "all-linear"])).lora_targets == "all-linear"


def test_field_args_rejects_what_it_cannot_parse():
    "A field with no command-line form must be excluded explicitly, not silently dropped"
    from dataclasses import dataclass, field
    from ft_course.cli import field_args
    @dataclass
    class C:
        n:int = 1          # a number
        extra:dict = field(default_factory=dict)  # no command-line form
    with pytest.raises(TypeError, match="extra"): field_args(C)
    assert [flags for flags, _ in field_args(C, exclude=("extra",))] == [["--n"]]


@pytest.mark.parametrize("args, code, needle", [
    (["--gpus", "0"], 1, "integer >= 1"),
    (["--gpus", "two"], 2, "invalid int"),
    (["--sharding", "fsdp"], 2, "invalid choice"),
])
def test_memory_scale_flags_reject_bad_values(args, code, needle, capsys, monkeypatch):
    "`--gpus` and `--sharding` (notebook 10d): a wrong value is one clean line, our ValueError or argparse's"
    monkeypatch.delenv("FT_COURSE_DEBUG", raising=False)
    try: got = main(["memory", "--config", "Qwen2.5-0.5B", "--no-table", *args])
    except SystemExit as e: got = e.code
    err = capsys.readouterr().err
    assert got == code and needle in err and "Traceback" not in err, err


def test_memory_per_gpu_with_sharding(capsys):
    "`--gpus 8 --sharding zero3` prints the per-GPU estimate, smaller than DDP's, which equals one GPU's"
    from ft_course.scale import per_gpu_memory
    base = ["memory", "--config", "Llama-3.2-1B", "--batch-size", "4", "--no-table"]
    assert main(base) == 0 and main([*base, "--gpus", "8"]) == 0 and main([*base, "--gpus", "8", "--sharding", "zero3"]) == 0
    one, ddp, z3 = [l for l in capsys.readouterr().out.splitlines() if "GiB peak" in l]
    assert "per GPU of 8 (zero3)" in z3 and "per GPU of 8 (ddp)" in ddp and "per GPU" not in one
    peak = lambda line: float(line.split(": ")[-1].split(" GiB")[0])
    assert peak(one) == peak(ddp) > peak(z3)
    test = per_gpu_memory("Llama-3.2-1B", gpus=8, sharding="zero3", batch_size=4)
    assert f"{test.total / 2**30:.2f} GiB peak" in z3
