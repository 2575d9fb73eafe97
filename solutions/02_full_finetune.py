"""Solutions to the exercises of `02_full_finetune.ipynb`, on the `tiny` profile (runs in CI in seconds).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import tempfile
import numpy as np
from ft_course.setup import get_profile
from ft_course.data import load_profile_data, tokenize
from ft_course.train import load_classifier, make_training_args, make_trainer, log_frame, lr_schedule, total_train_steps

def _setup(prof=None):
    prof = prof or get_profile("tiny")
    model, tok = load_classifier(prof)
    return prof, model, tok, tokenize(load_profile_data(prof), tok, prof.max_length)

def exercise_1(steps:int=2, accum:int=4, n_train:int=128)->dict:
    """Train with `gradient_accumulation_steps=4` and a quarter of the batch size. Compare the logged losses
    with and without `trainer.model_accepts_loss_kwargs = False`.

    Returns the first logged loss of three runs (same data, same weights, same seed): the reference (batch 32, no
    accumulation), accumulation with the course's fix (`make_trainer` sets `model_accepts_loss_kwargs=False` for
    classifiers) and accumulation without it."""
    import dataclasses
    prof, _, tok, data = _setup(dataclasses.replace(get_profile("tiny"), n_train=n_train))   # tokenise once
    losses = {}
    for name, kw, fix in [("batch 32", dict(per_device_train_batch_size=32), True),
                          ("8 x 4, fixed", dict(per_device_train_batch_size=8, gradient_accumulation_steps=accum), True),
                          ("8 x 4, unfixed", dict(per_device_train_batch_size=8, gradient_accumulation_steps=accum), False)]:
        model, _ = load_classifier(prof)                                   # same weights each time
        args = make_training_args(tempfile.mkdtemp(), prof, max_steps=steps, logging_steps=1, eval_strategy="no",
                                  warmup_steps=0, disable_tqdm=True, **kw)
        tr = make_trainer(model, args, data, tok)
        # Trainer assumes a model that accepts `**kwargs` in `forward` normalises its loss by `num_items_in_batch`
        # and so skips dividing by the accumulation steps. BERT's classification loss is a plain mean per
        # micro-batch, so the summed loss (and the logged value) comes out `accum` times too large.
        if not fix: tr.model_accepts_loss_kwargs = True
        tr.train()
        losses[name] = float(log_frame(tr)[0]["loss"].iloc[0])
    # Answer: unfixed / reference ~= 4 (the accumulation steps); fixed / reference ~= 1. The gradients are 4x too
    # large as well, which AdamW mostly hides (it is scale invariant) but gradient clipping and SGD do not.
    return losses

def exercise_2(max_steps:int=20, n_train:int=512)->dict:
    """Set `max_steps=20` and `num_train_epochs=10`. Which wins? How many epochs does the run cover?

    `max_steps` wins: it overrides `num_train_epochs`. 512 rows / batch 32 = 16 steps per epoch, so 20 steps
    cover 20/16 = 1.25 epochs (measured: `global_step` 20, `state.epoch` 1.25)."""
    import dataclasses
    prof, model, tok, data = _setup(dataclasses.replace(get_profile("tiny"), n_train=n_train))
    args = make_training_args(tempfile.mkdtemp(), prof, max_steps=max_steps, num_train_epochs=10, eval_strategy="no",
                              logging_steps=5, disable_tqdm=True)
    tr = make_trainer(model, args, data, tok)
    out = tr.train()
    return dict(global_step=out.global_step, epoch=tr.state.epoch, planned=total_train_steps(args, len(data["train"])),
                steps_per_epoch=int(np.ceil(len(data["train"]) / args.per_device_train_batch_size)))

def exercise_3(profile:str="tiny", n_train:int|None=128):
    """Switch the profile to `cpu` and train for one epoch on 2,000 rows. Plot the learning rate from
    `log_frame(trainer)[0]["learning_rate"]` next to the loss.

    Solved on the `tiny` profile (128 rows) by default (the `cpu` profile needs MiniLM and ~1 minute: pass
    `profile="cpu", n_train=2000`). Returns (train log, the scheduler's lr at each step, the figure): the logged
    learning rates are those of `lr_schedule` (10% linear warmup, then linear decay), read at the logging steps."""
    import dataclasses, matplotlib.pyplot as plt
    prof = get_profile(profile)
    if n_train: prof = dataclasses.replace(prof, n_train=n_train)
    prof, model, tok, data = _setup(prof)
    args = make_training_args(tempfile.mkdtemp(), prof, num_train_epochs=1, logging_steps=1, eval_strategy="no", disable_tqdm=True)
    tr = make_trainer(model, args, data, tok); tr.train()
    log = log_frame(tr)[0]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(log.index, log["loss"], label="loss"); ax.set(xlabel="optimizer step", ylabel="loss")
    ax2 = ax.twinx(); ax2.plot(log.index, log["learning_rate"], "r--", label="learning rate"); ax2.set_ylabel("learning rate")
    plt.close(fig)
    return log, lr_schedule(args, len(data["train"])), fig

def exercise_4(n_train:int=512)->dict:
    """Replace `lr_scheduler_type="linear"` with `"cosine"` and plot both schedules with `lr_schedule`.

    Both warm up identically and start decaying from the same peak; cosine stays higher during the first half
    of the decay and lower during the second half (0.5(1+cos(pi t)) against 1-t), ending at 0 like linear."""
    prof = get_profile("tiny")
    return {s: lr_schedule(make_training_args(tempfile.mkdtemp(), prof, lr_scheduler_type=s), n_train)
            for s in ("linear", "cosine")}
