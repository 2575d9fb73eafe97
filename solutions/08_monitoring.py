"""Solutions to the exercises of `08_monitoring.ipynb`, on the `tiny` profile (all four run in CI, a few seconds each
with one torch thread).
Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import tempfile, warnings
from pathlib import Path
from datasets import DatasetDict
from transformers import EarlyStoppingCallback
from ft_course.setup import get_profile
from ft_course.data import load_profile_data, tokenize
from ft_course.train import load_classifier, make_training_args, make_trainer, log_frame
from ft_course.monitoring import LossMonitor, last_complete_checkpoint

def _data(n_train, prof=None, **load_kw):
    prof = prof or get_profile("tiny")
    model, tok = load_classifier(prof, **load_kw)
    data = tokenize(load_profile_data(prof), tok, prof.max_length)
    return prof, model, tok, DatasetDict(train=data["train"].shuffle(seed=0).select(range(n_train)), validation=data["validation"])

def overfit_run(n_train:int=64, epochs:int=40, weight_decay:float=0.0, hidden_dropout_prob:float|None=None,
                patience:int=3, out_dir:str|None=None)->dict:
    "The notebook's overfitting demo with the knobs the exercises turn; returns what the exercises ask about"
    kw = {} if hidden_dropout_prob is None else dict(hidden_dropout_prob=hidden_dropout_prob)
    prof, model, tok, small = _data(n_train, **kw)
    args = make_training_args(out_dir or tempfile.mkdtemp(), prof, num_train_epochs=epochs, per_device_train_batch_size=16,
                              per_device_eval_batch_size=128, learning_rate=3e-3, warmup_steps=0, weight_decay=weight_decay,
                              logging_strategy="epoch", eval_strategy="epoch", save_strategy="epoch", save_total_limit=2,
                              load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
                              disable_tqdm=True)
    monitor = LossMonitor(patience=2, plot=False)
    tr = make_trainer(model, args, small, tok, callbacks=[monitor, EarlyStoppingCallback(early_stopping_patience=patience)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore"); out = tr.train()
    ev = log_frame(tr)[1]
    steps_per_epoch = -(-n_train // 16)
    return dict(stopped_at=out.global_step, steps_per_epoch=steps_per_epoch, overfit_step=monitor.overfit_step,
                best_step=tr.state.best_global_step, best_eval_loss=float(ev["eval_loss"].min()),
                best_epoch=tr.state.best_global_step / steps_per_epoch, eval_loss=ev["eval_loss"].round(3).tolist())

def exercise_1()->dict:
    """Rerun the overfitting demo with 512 training rows instead of 64. Does `LossMonitor` still flag overfitting? At
    which step does early stopping stop, and how does the best validation loss change?

    Returns both runs (`overfit_run`, ~4 s with one torch thread).
    Measured on the tiny profile: yes, `LossMonitor` still flags it (step 96), early stopping stops at step 128
    (epoch 4 of 32-step epochs, against step 24 with 64 rows) and the best validation loss does *not* improve
    (0.699 at epoch 1, against 0.690 with 64 rows; both are ln 2 = 0.693, chance). The tiny random model cannot
    learn SST-2 at lr 3e-3 whatever the data: more steps per epoch only memorise faster. On the `cpu` profile
    (MiniLM) more rows do lower the best validation loss; that is where the exercise's intended answer shows."""
    return {n: overfit_run(n) for n in (64, 512)}

def exercise_2()->dict:
    """Add `weight_decay=0.1` and dropout (`load_classifier(prof, hidden_dropout_prob=0.3)`). How many epochs later
    does the validation loss turn up?

    Returns the baseline and the regularised run; compare `best_epoch` (the epoch of the lowest validation loss,
    after which it turns up). Measured on the tiny profile: 0 epochs later (both turn after epoch 3 and stop at
    step 24), but the rise is slower: validation loss 1.02 instead of 1.30 at epoch 6. Regularisation slows the
    memorisation of 64 rows; it does not move the turn on a model that learns nothing general."""
    return dict(baseline=overfit_run(64), regularised=overfit_run(64, weight_decay=0.1, hidden_dropout_prob=0.3))

def exercise_3(n_train:int=64, epochs:int=4)->dict:
    """Set `save_total_limit=1` with `load_best_model_at_end=True`. Which checkpoints are on disk at the end, and why
    can you no longer compare the best and last weights?

    Measured: only the *best* checkpoint is left. `Trainer` never deletes the best checkpoint, and with a limit of 1
    it deletes everything else, the latest included (the latest is protected only when the limit is 2 or more,
    which is why the notebook uses 2). The last weights are gone from disk: `load_best_model_at_end` puts the best
    ones in memory, the run can no longer be resumed from its end, and there is nothing left to compare the best
    weights with. (When the best is also the last, the one folder is both.) Returns the folders left, best, last."""
    out_dir = tempfile.mkdtemp()
    prof, model, tok, small = _data(n_train)
    args = make_training_args(out_dir, prof, num_train_epochs=epochs, per_device_train_batch_size=16, learning_rate=3e-3,
                              warmup_steps=0, weight_decay=0.0, eval_strategy="epoch", save_strategy="epoch",
                              save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="eval_loss",
                              greater_is_better=False, disable_tqdm=True)
    tr = make_trainer(model, args, small, tok)
    tr.train()
    left = sorted(p.name for p in Path(out_dir).glob("checkpoint-*"))
    return dict(on_disk=left, best=Path(tr.state.best_model_checkpoint).name, last=f"checkpoint-{tr.state.global_step}",
                eval_loss=log_frame(tr)[1]["eval_loss"].round(3).tolist())

def exercise_4(max_steps:int=4, save_steps:int=2)->dict:
    """Delete `rng_state.pth` from a checkpoint and resume from it with `resume_from_checkpoint=` directly (bypassing
    `last_complete_checkpoint`). Do the final weights still match an uninterrupted run?

    No. `Trainer` logs at INFO level that it did not find the RNG state and goes on; the data order is the same
    (`data_seed` fixes the sampler) but the dropout masks (the tiny model has p = 0.1) differ from the
    uninterrupted run, so the weights end a little apart. Resuming from the intact checkpoint matches exactly, and
    `last_complete_checkpoint` refuses the damaged one. Returns the max |weight difference| of each resume."""
    prof, _, tok, data = _data(128)
    def trainer(out):
        model, _ = load_classifier(prof)
        args = make_training_args(out, prof, max_steps=max_steps, save_strategy="steps", save_steps=save_steps,
                                  eval_strategy="no", logging_steps=1, disable_tqdm=True)
        return make_trainer(model, args, data, tok)
    weights = lambda tr: {k: v.detach().clone() for k, v in tr.model.state_dict().items()}
    ref_dir = tempfile.mkdtemp()
    ref = trainer(ref_dir); ref.train(); w_ref = weights(ref)
    ckpt = Path(ref_dir) / f"checkpoint-{save_steps}"
    res = {}
    for case in ("intact", "rng_state.pth deleted"):
        import shutil
        d = Path(tempfile.mkdtemp()) / ckpt.name
        shutil.copytree(ckpt, d)
        if case != "intact": (d / "rng_state.pth").unlink()
        tr = trainer(str(d.parent / "run")); tr.train(resume_from_checkpoint=str(d))
        w = weights(tr)
        res[case] = dict(max_weight_diff=max((w[k] - w_ref[k]).abs().max().item() for k in w),
                         guard_accepts=last_complete_checkpoint(d.parent) is not None)
    return res
