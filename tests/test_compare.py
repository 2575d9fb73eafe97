"""Tests for ft_course.compare beyond notebook 10a: every method on one short tiny-profile run and the files it writes,
a method registered from outside with one entry (the registry bar), isolation in fresh processes and its failure message,
the lower-bound ratio, and config errors"""
import json

import pandas as pd
import pytest

from ft_course.compare import (COLUMNS, METHOD_BUILDERS, METHOD_CONFIGS, METHODS, CompareConfig, MethodConfig,
                               register_method, results_frame, run_comparison)
from ft_course.setup import data_dir, get_profile
from ft_course.train import load_classifier


@pytest.fixture(scope="module")
def tiny_all(tmp_path_factory):
    "All six methods and the naive recipe, 4 steps each, in this process"
    out = tmp_path_factory.mktemp("cmp_all")
    cfg = CompareConfig(max_steps=4, evals_per_epoch=4, isolate=False, naive_max_seconds=2, out=str(out))
    df, summary = run_comparison(cfg, plots=True, log=None)
    return df, summary, out


def test_table_columns_and_files(tiny_all):
    df, summary, out = tiny_all
    assert list(df.columns) == COLUMNS
    assert sorted(df.method) == sorted([*METHODS, "naive"])
    for f in ("compare.csv", "compare.md", "runs.jsonl", "accuracy_vs_params.png", "memory.png", "loss_curves.png",
              "accuracy_vs_time.png"):
        assert (out/f).stat().st_size > 0, f
    runs = [json.loads(l) for l in (out/"runs.jsonl").read_text().splitlines()]
    assert all(r["log_history"] and r["curve"] for r in runs)   # loss curves and accuracy curves stored per method


def test_trainable_ordering(tiny_all):
    t = tiny_all[0].set_index("method")
    assert t.loc["full", "trainable_pct"] == pytest.approx(100)
    assert t.loc["full", "trainable"] == t.loc["llrd", "trainable"] == t.loc["naive", "trainable"]
    assert t.loc["full", "trainable"] > t.loc["freeze", "trainable"] > t.loc["lora", "trainable"] > t.loc["prompt_tuning", "trainable"] > 0
    assert t.loc["lora", "trainable"] == t.loc["qlora", "trainable"]   # same adapters; the 4-bit base is the only difference
    assert t.loc["lora", "saved_mb"] < t.loc["full", "saved_mb"] / 5     # an adapter, not a model


def test_measurements_per_method(tiny_all):
    df, summary, _ = tiny_all
    assert (df.peak_mem_mb > 0).all() and (df.predicted_peak_mb > 0).all()
    assert (df.steps[df.method != "naive"] == 4).all() and (df.ms_per_step > 0).all() and (df.tokens_per_s > 0).all()
    assert df.accuracy.between(0, 1).all()
    n = df.set_index("method")
    assert n.loc["naive", "padded_to"] > 64 and n.loc["naive", "batch_size"] == 16
    assert {"throughput_ratio", "memory_ratio", "target_accuracy"} <= set(summary) and summary["throughput_ratio"] > 0
    # (on the tiny model, times are overhead-bound and the shared CI cores are noisy: the ratio is measured on the cpu profile)


def test_isolated_processes(tmp_path):
    "A fresh process per method: the peak is per process, and the child's log is kept"
    cfg = CompareConfig(methods=["prompt_tuning"], max_steps=2, evals_per_epoch=1, out=str(tmp_path))
    df, _ = run_comparison(cfg, plots=False, log=None)
    assert df.memory_isolated.all() and (df.peak_mem_mb > df.start_mem_mb).all()
    assert (tmp_path/"runs"/"prompt_tuning").is_dir()         # the child's run folder
    assert (tmp_path/"runs"/"prompt_tuning.log").exists()     # its stderr, kept by the parent


@pytest.fixture
def toy():
    "A method registered from outside the package with one entry: only the classifier trains; removed afterwards"
    @register_method(MethodConfig("toy", 1e-3, source="tests/test_compare.py: a frozen body under a trained classifier"))
    def build_toy(profile, cfg, labels):
        model = load_classifier(profile, labels)[0]
        for n, p in model.named_parameters(): p.requires_grad = n.startswith("classifier.")
        return model, None
    yield "toy"
    METHOD_CONFIGS.pop("toy", None); METHOD_BUILDERS.pop("toy", None)


def test_registered_method_runs_in_the_comparison(toy, tmp_path):
    "The registry bar: one `register_method` entry, and the method trains, is measured and appears in the table"
    assert METHOD_BUILDERS[toy].__name__ == "build_toy" and METHOD_CONFIGS[toy].memory_method is None
    df, _ = run_comparison(CompareConfig(methods=[toy, "full"], isolate=False, max_steps=2, out=str(tmp_path)), plots=False, log=None)
    t = df.set_index("method")
    assert list(t.index) == [toy, "full"]
    head = sum(p.numel() for n, p in load_classifier(get_profile("tiny"))[0].named_parameters() if n.startswith("classifier."))
    assert t.loc[toy, "trainable"] == head < t.loc["full", "trainable"]       # its own count: the classifier only
    assert pd.isna(t.loc[toy, "predicted_peak_mb"]) and t.loc["full", "predicted_peak_mb"] > 0   # no estimator method: no prediction
    assert t.loc[toy, "steps"] == 2 and t.loc[toy, "learning_rate"] == 1e-3 and t.loc[toy, "peak_mem_mb"] > 0
    assert 0 <= t.loc[toy, "accuracy"] <= 1 and t.loc[toy, "saved_mb"] > 0
    assert [json.loads(l)["method"] for l in (tmp_path/"runs.jsonl").read_text().splitlines()] == [toy, "full"]


def test_isolated_failure_names_the_method_and_keeps_the_log(toy, tmp_path):
    "A method the fresh process cannot run (registered only in this process) fails with its name and the child's log"
    with pytest.raises(RuntimeError, match=r"method 'toy': ft_course\.compare:_run_one failed in its process: .*full log"):
        run_comparison(CompareConfig(methods=[toy], max_steps=1, out=str(tmp_path)), plots=False, log=None)
    assert "Traceback" in (tmp_path/"runs"/"toy.log").read_text()


def test_ratio_is_a_lower_bound_when_naive_never_reaches_the_target():
    "(notebook 10a checks the case where both reach it)"
    run = lambda m, tta_curve, ex: dict(method=m, accuracy=.8, curve=tta_curve, examples_per_s=ex, peak_mem_mb=100., train_s=60.)
    _, s = results_frame([run("full", [dict(train_s=10., accuracy=.8)], 40.), run("naive", [dict(train_s=60., accuracy=.5)], 1.)], .7)
    assert s["ratio_is_lower_bound"] and s["time_to_target_ratio"] == 6.0 and s["throughput_ratio"] == 40.0


def test_config_errors():
    "(unknown methods and profiles, and a zero learning rate, are checked in notebook 10a)"
    with pytest.raises(ValueError, match="max_steps"): CompareConfig(max_steps=0)
    with pytest.raises(ValueError, match="n_train"): CompareConfig(n_train=0)
    with pytest.raises(ValueError, match="evals_per_epoch"): CompareConfig(evals_per_epoch=0)
    with pytest.raises(ValueError, match="learning_rate"): MethodConfig("x", -1e-3)
    with pytest.raises(ValueError, match="frozen_fraction"): MethodConfig("freeze", 1e-4, frozen_fraction=1.0)
    with pytest.raises(ValueError, match="methods is empty"): CompareConfig(methods=" , ")


# --- your own data (issue 15) ---
def test_four_class_csv_through_the_cli(tmp_path, capsys):
    "`ft-course compare --data` on a 4-class dataset with its own column names and string labels: runs and writes its table"
    from ft_course.cli import main
    from ft_course.data import example_path
    out = tmp_path/"plays"
    rc = main(["compare", "--data", str(example_path()), "--text-col", "speech", "--label-col", "play", "--methods", "full", "LoRA",
               "prompt_tuning", "qlora", "--max-steps", "2", "--n-train", "64", "--n-eval", "32", "--in-process", "--no-plots", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "note: the tiny profile's models are random" in printed
    assert list(pd.read_csv(out/"compare.csv").method) == ["full", "lora", "prompt_tuning", "qlora"]
    runs = [json.loads(l) for l in (out/"runs.jsonl").read_text().splitlines()]
    assert {r["classes"] for r in runs} == {4} and all(0 < r["majority_accuracy"] < 0.5 for r in runs)

def test_bad_data_stops_the_cli_before_any_training(tmp_path, capsys):
    from ft_course.cli import main
    pd.DataFrame({"review": ["a fine film"] * 8, "stars": [1, 2, 3, 4] * 2}).to_csv(tmp_path/"d.csv", index=False)
    rc = main(["compare", "--data", str(tmp_path/"d.csv"), "--label-col", "stars", "--out", str(tmp_path/"o")])
    err = capsys.readouterr().err
    assert rc == 1 and "no column 'text'" in err and "['review', 'stars']" in err
    assert not (tmp_path/"o"/"runs").exists()                                    # nothing was trained

@pytest.mark.skipif(data_dir() is None, reason="needs shared/data (SST-2)")
def test_a_csv_copy_of_sst2_gives_the_sst2_numbers(tmp_path):
    "The bar: a 2-class CSV with other column names and string labels goes through the same path as the profile's SST-2"
    from ft_course.compare import run_method
    from ft_course.data import load_sentiment
    sst, folder = load_sentiment("sst2"), tmp_path/"sst2_csv"
    folder.mkdir()
    for split, file in (("train", "train.csv"), ("validation", "dev.csv")):
        df = sst[split].to_pandas().rename(columns={"text": "sentence"})
        df["sentiment"] = df.pop("label").map({0: "negative", 1: "positive"})
        df.to_csv(folder/file, index=False)
    base = dict(isolate=False, max_steps=3, evals_per_epoch=1)
    a = run_method("full", CompareConfig(**base, out=str(tmp_path/"a")))
    b = run_method("full", CompareConfig(**base, data=str(folder), text_col="sentence", label_col="sentiment", out=str(tmp_path/"b")))
    assert a["accuracy"] == b["accuracy"] and a["eval_loss"] == pytest.approx(b["eval_loss"], rel=1e-6)

def test_a_wrong_lora_target_lists_the_candidates_on_the_peft_path():
    from dataclasses import replace
    cfg = replace(METHOD_CONFIGS["lora"], target_modules=["q_proj", "v_proj"])    # Llama's names on a BERT
    with pytest.raises(ValueError, match=r"\['q_proj', 'v_proj'\] match no linear layer.*Candidates.*'query'"):
        METHOD_BUILDERS["lora"](get_profile("tiny"), cfg, ["negative", "positive"])

def test_stored_sst2_csv_record_matches_the_stored_comparison():
    "bench/results/sst2_csv_cpu.md reports the cpu-profile equality; its numbers must be the full row of compare_cpu"
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]/"bench"/"results"
    rows = [l.split("|") for l in (root/"sst2_csv_cpu.md").read_text().splitlines() if l.startswith("| ") and "full" in l]
    full = pd.read_csv(root/"compare_cpu"/"compare.csv").set_index("method").loc["full"]
    assert len(rows) == 2 and all(float(r[4]) == full.accuracy and float(r[5]) == pytest.approx(full.eval_loss, rel=1e-12) for r in rows)
