"""ft_course.monitoring beyond the notebook: W&B key handling, backend choice, TensorBoard event files,
the checkpoint guard on damaged checkpoints, and a run killed with SIGKILL mid-save, then resumed."""
import json, os, shutil, signal, subprocess, sys, threading, types
from pathlib import Path

import pytest, torch
from transformers import TrainerCallback, TrainingArguments
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import get_last_checkpoint

from ft_course import monitoring as M

TESTS = Path(__file__).parent
MAX_STEPS, SAVE_STEPS, KILL_AT = 12, 4, 8     # killed while writing checkpoint-8, resumed from checkpoint-4


class _Beat(TrainerCallback):
    "Print the global step after each optimizer step, so a parent process can follow the run"
    def on_step_end(self, args, state, control, **kwargs): print(f"STEP {state.global_step}", flush=True)


def _trainer(out, max_steps=MAX_STEPS, save_steps=SAVE_STEPS, report="none", eval_steps=None, callbacks=(), **kw):
    "The tiny classifier, deterministic (fixed seed and data_seed, CPU), checkpointing every `save_steps`"
    from ft_course.setup import get_profile, setup_env
    from ft_course.data import load_profile_data, tokenize
    from ft_course.train import load_classifier, make_training_args, make_trainer
    setup_env(0, offline=True)
    prof = get_profile("tiny")
    model, tok = load_classifier(prof)
    data = tokenize(load_profile_data(prof), tok, prof.max_length)
    ev = dict(eval_strategy="steps", eval_steps=eval_steps) if eval_steps else dict(eval_strategy="no")
    args = make_training_args(str(out), prof, max_steps=max_steps, per_device_train_batch_size=8, save_strategy="steps",
                              save_steps=save_steps, logging_steps=2, disable_tqdm=True, seed=0, data_seed=0,
                              report_to=report, use_cpu=True, **ev, **kw)
    return make_trainer(model, args, data, tok, callbacks=[_Beat(), *callbacks])


def _run(out, hang_at=-1):
    "Entry point of the child process: train; with `hang_at`, freeze inside the save of that checkpoint"
    if hang_at > 0:        # stop after the weights, optimizer, scheduler and RNG files, before trainer_state.json
        save = TrainerState.save_to_json
        def slow_save(self, path):
            if self.global_step == hang_at and "checkpoint-" in path:
                print(f"SAVING {hang_at}", flush=True)
                threading.Event().wait(600)
            save(self, path)
        TrainerState.save_to_json = slow_save
    _trainer(out).train()


def _weights(trainer): return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    "Output folder of a child run killed with SIGKILL while it was writing checkpoint-KILL_AT"
    out = tmp_path_factory.mktemp("killed")/"run"
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_monitoring as t; t._run({str(out)!r}, hang_at={KILL_AT})"
    err = open(out.parent/"child.stderr", "w+")        # a file, so a chatty child can never block on a full pipe
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=err, text=True, cwd=out.parent)
    watchdog = threading.Timer(240, p.kill); watchdog.start()
    steps = []
    try:
        for line in p.stdout:
            if line.startswith("STEP"): steps.append(int(line.split()[1]))
            if line.startswith(f"SAVING {KILL_AT}"): break
        assert p.poll() is None, f"child exited early: {(out.parent/'child.stderr').read_text()[-2000:]}"
        assert (out/f"checkpoint-{SAVE_STEPS}").is_dir() and max(steps) > SAVE_STEPS   # past a checkpoint
        os.kill(p.pid, signal.SIGKILL)
        assert p.wait(30) == -signal.SIGKILL
    finally:
        watchdog.cancel(); p.kill(); p.stdout.close(); err.close()
    return out


def test_kill_resume_matches_uninterrupted_run(killed, tmp_path):
    partial = killed/f"checkpoint-{KILL_AT}"
    # what the kill left behind: weights, optimizer, scheduler and RNG state, but no trainer_state.json
    assert (partial/"model.safetensors").exists() and not (partial/"trainer_state.json").exists()
    # transformers picks the half-written folder by its name alone, and resuming from it fails
    assert get_last_checkpoint(str(killed)) == str(partial)
    with pytest.raises(FileNotFoundError, match="trainer_state.json"):
        _trainer(tmp_path/"naive").train(resume_from_checkpoint=str(partial))
    # the guard skips it and names what is missing
    with pytest.warns(UserWarning, match="trainer_state.json: missing"):
        ckpt = M.last_complete_checkpoint(killed)
    assert ckpt == str(killed/f"checkpoint-{SAVE_STEPS}")

    resumed = _trainer(tmp_path/"resumed")
    resumed.train(resume_from_checkpoint=ckpt)
    reference = _trainer(tmp_path/"reference", save_total_limit=2)
    reference.train()

    assert resumed.state.global_step == reference.state.global_step == MAX_STEPS
    a, b = _weights(resumed), _weights(reference)
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    print(f"resumed at step {SAVE_STEPS} -> {resumed.state.global_step}, uninterrupted {reference.state.global_step}, "
          f"max abs weight difference {diff:.3g}")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), diff
    # the loss logged after the resume point is the uninterrupted run's loss
    after = lambda t: [(r["step"], round(r["loss"], 5)) for r in t.state.log_history if "loss" in r and r["step"] > SAVE_STEPS]
    assert after(resumed) == after(reference)
    # save_total_limit=2 kept only the two most recent checkpoints
    assert sorted(p.name for p in (tmp_path/"reference").glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-8"]


def _damaged(src, dst, how):
    shutil.copytree(src, dst)
    how(dst)
    return dst

def _truncate(path, frac=0.5):
    with open(path, "r+b") as f: f.truncate(int(path.stat().st_size * frac))


@pytest.mark.parametrize("how, problem", [
    (lambda d: _truncate(d/"model.safetensors"), "model.safetensors: missing or truncated"),
    (lambda d: _truncate(d/"model.safetensors", 0.999), "model.safetensors: missing or truncated"),
    (lambda d: (d/"model.safetensors").unlink(), "no weights"),
    (lambda d: (d/"trainer_state.json").unlink(), "trainer_state.json: missing"),
    (lambda d: _truncate(d/"trainer_state.json"), "trainer_state.json: missing or not valid JSON"),
    (lambda d: _truncate(d/"optimizer.pt", 0.9), "optimizer.pt: missing or truncated"),
    (lambda d: (d/"optimizer.pt").unlink(), "optimizer.pt: missing"),     # what save_only_model=True leaves
    (lambda d: (d/"scheduler.pt").unlink(), "scheduler.pt: missing"),
    (lambda d: (d/"rng_state.pth").unlink(), "rng_state.pth: missing"),
])
def test_damaged_checkpoint_is_never_picked(killed, tmp_path, how, problem):
    good = killed/f"checkpoint-{SAVE_STEPS}"
    assert M.checkpoint_problems(good) == []
    out = tmp_path/"run"; out.mkdir()
    shutil.copytree(good, out/good.name)
    bad = _damaged(good, out/"checkpoint-99", how)
    assert any(problem in p for p in M.checkpoint_problems(bad)), M.checkpoint_problems(bad)
    assert get_last_checkpoint(str(out)) == str(bad)              # transformers would take it
    with pytest.warns(UserWarning, match="Skipping incomplete"):
        assert M.last_complete_checkpoint(out) == str(out/good.name)


def test_step_mismatch_and_names(killed, tmp_path):
    good = killed/f"checkpoint-{SAVE_STEPS}"
    renamed = _damaged(good, tmp_path/"checkpoint-20", lambda d: None)
    assert M.checkpoint_problems(renamed) == [f"trainer_state.json: global_step {SAVE_STEPS} != 20"]
    assert "not named" in M.checkpoint_problems(_damaged(good, tmp_path/"tmp-checkpoint-30", lambda d: None))[0]
    assert M.last_complete_checkpoint(tmp_path/"nothing-here") is None


def test_tensorboard_wandb_and_plot(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path)); monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    mon = M.LossMonitor()
    tr = _trainer(tmp_path/"tb", max_steps=6, save_steps=100, report=M.report_to("wandb", "tensorboard"),
                  eval_steps=3, callbacks=[mon])
    tr.train()
    ea = EventAccumulator(str(next((tmp_path/"tb").glob("runs/*")))).Reload()
    assert {"train/loss", "eval/loss"} <= set(ea.Tags()["scalars"])
    logged = {r["step"]: r["eval_loss"] for r in tr.state.log_history if "eval_loss" in r}
    tb = {e.step: e.value for e in ea.Scalars("eval/loss")}
    assert sorted(tb) == sorted(logged) == [3, 6]
    assert all(abs(tb[s] - logged[s]) < 1e-6 for s in tb)
    assert [e.step for e in ea.Scalars("train/loss")] == [r["step"] for r in tr.state.log_history if "loss" in r]
    assert list(tmp_path.glob("wandb/offline-run-*/*.wandb"))
    assert mon.plot_path == tmp_path/"tb"/"loss_curves.png" and mon.plot_path.stat().st_size > 1000


def test_wandb_key_from_env_is_never_printed(monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", "sekrit-env-0123456789")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    mode = M.wandb_login_from_env_or_colab()
    assert mode == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")                  # an explicit mode wins
    assert M.wandb_login_from_env_or_colab() == "offline"
    out = capsys.readouterr()
    assert "sekrit" not in out.out + out.err + mode


def test_wandb_key_from_colab_secrets(monkeypatch, capsys):
    userdata = types.SimpleNamespace(get=lambda name: "sekrit-colab-42" if name == "WANDB_API_KEY" else None)
    colab = types.ModuleType("google.colab"); colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.delenv("WANDB_API_KEY", raising=False); monkeypatch.delenv("WANDB_MODE", raising=False)
    assert M.wandb_login_from_env_or_colab() == "online"
    assert os.environ["WANDB_API_KEY"] == "sekrit-colab-42"
    out = capsys.readouterr()
    assert "sekrit" not in out.out + out.err


def test_no_key_means_offline(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False); monkeypatch.delenv("WANDB_MODE", raising=False)
    def refused(name): raise RuntimeError("notebook access not granted")
    colab = types.ModuleType("google.colab"); colab.userdata = types.SimpleNamespace(get=refused)
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert M.wandb_login_from_env_or_colab() == "offline" and os.environ["WANDB_MODE"] == "offline"


def test_report_to_keeps_only_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(M, "_installed", lambda m: m == "tensorboardX")
    assert M.report_to() == ["tensorboard"]
    monkeypatch.setattr(M, "_installed", lambda m: False)
    assert M.report_to() == [] and TrainingArguments(str(tmp_path), report_to=M.report_to()).report_to == []
    with pytest.raises(ValueError, match="unknown backend"): M.report_to("wandb", "mlflow")


def test_find_overfit_needs_both_curves():
    assert M.find_overfit([{"loss": 0.5, "step": 1}]) is None
    assert M.find_overfit([{"eval_loss": 0.5, "step": 1}]) is None
    h = [{"loss": l, "step": s} for s, l in [(1, .7), (2, .5), (3, .3), (4, .2)]]
    h += [{"eval_loss": l, "step": s} for s, l in [(1, .6), (2, .7), (3, .8), (4, .9)]]
    assert M.find_overfit(h, patience=1) == 2 and M.find_overfit(h, patience=3) == 4
    assert M.find_overfit(h, patience=4) is None
