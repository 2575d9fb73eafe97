"Regression guards for the training layer (`ft_course.train`): gradient-accumulation loss, warmup check, arguments"
import warnings

import pytest
import torch

from ft_course.setup import setup_env, get_profile
from ft_course.data import load_profile_data, tokenize
from ft_course.train import load_classifier, make_training_args, make_trainer, check_warmup

NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

@pytest.fixture(scope="module")
def tiny():
    setup_env(offline=True)
    prof = get_profile("tiny")
    _, tok = load_classifier(prof)
    return prof, tok, tokenize(load_profile_data(prof), tok, prof.max_length)

def first_logged_loss(tiny, tmp, batch, accum, accepts_loss_kwargs=None):
    "Loss logged after the first optimizer step of an effective batch of 32 = `batch` x `accum`"
    prof, tok, data = tiny
    torch.manual_seed(0)
    model, _ = load_classifier(prof, **NO_DROPOUT)
    args = make_training_args(str(tmp), prof, per_device_train_batch_size=batch, gradient_accumulation_steps=accum,
                              max_steps=1, warmup_steps=0, logging_steps=1, eval_strategy="no", disable_tqdm=True)
    trainer = make_trainer(model, args, data, tok)
    if accepts_loss_kwargs is not None: trainer.model_accepts_loss_kwargs = accepts_loss_kwargs
    trainer.train()
    return next(r["loss"] for r in trainer.state.log_history if "loss" in r)

def test_loss_does_not_scale_with_accumulation(tiny, tmp_path):
    losses = {(b, a): first_logged_loss(tiny, tmp_path/f"{b}x{a}", b, a) for b, a in [(32, 1), (16, 2), (8, 4)]}
    ref = losses[(32, 1)]
    for k, v in losses.items(): assert v == pytest.approx(ref, rel=0.05), (k, losses)

def test_the_trap_exists_without_the_fix(tiny, tmp_path):
    "If `Trainer` believed the classifier's loss used `num_items_in_batch`, the logged loss would double at accumulation 2"
    ref = first_logged_loss(tiny, tmp_path/"ref", 32, 1)
    trapped = first_logged_loss(tiny, tmp_path/"trapped", 16, 2, accepts_loss_kwargs=True)
    assert trapped / ref == pytest.approx(2.0, rel=0.05)

def test_check_warmup_warns_on_copied_warmup(tiny, tmp_path):
    prof = tiny[0]
    copied = make_training_args(str(tmp_path), prof, learning_rate=5e-5, max_steps=50, warmup_steps=500)
    with pytest.warns(UserWarning, match="peaks at 4.9e-06"): frac = check_warmup(copied, 1000)
    assert frac == pytest.approx(10.0)

def test_check_warmup_silent_on_a_fraction(tiny, tmp_path):
    ok = make_training_args(str(tmp_path), tiny[0], max_steps=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_warmup(ok, 1000) == pytest.approx(0.1)

def test_make_trainer_runs_the_warmup_check(tiny, tmp_path):
    prof, tok, data = tiny
    model, _ = load_classifier(prof)
    args = make_training_args(str(tmp_path), prof, max_steps=5, warmup_steps=500)
    with pytest.warns(UserWarning, match="warmup_steps=500"): make_trainer(model, args, data, tok)

@pytest.mark.parametrize("bad", [dict(learning_rat=1e-3), dict(warmup_ratio=0.1), dict(evaluation_strategy="epoch"),
                                 dict(tokenizer="x")])
def test_make_training_args_rejects_unknown_names(tiny, bad, tmp_path):
    with pytest.raises(TypeError, match=next(iter(bad))): make_training_args(str(tmp_path), tiny[0], **bad)

def test_make_training_args_overrides_win(tiny, tmp_path):
    prof = tiny[0]
    args = make_training_args(str(tmp_path), prof, learning_rate=3e-4, per_device_train_batch_size=4, eval_strategy="no")
    assert (args.learning_rate, args.per_device_train_batch_size, args.eval_strategy) == (3e-4, 4, "no")
    assert make_training_args(str(tmp_path), prof).learning_rate == prof.learning_rate

def test_gpu_speed_kwargs_only_on_a_capable_gpu(tmp_path):
    "The measured GPU speed settings (Liger) never reach CPU or tiny runs"
    import torch
    from ft_course.train import gpu_speed_kwargs, make_training_args
    from ft_course.setup import get_profile
    if not torch.cuda.is_available(): assert gpu_speed_kwargs() == {}
    assert not make_training_args(str(tmp_path), get_profile("tiny")).use_liger_kernel


# --- bad data stops in `make_trainer`, before the first step, with a sentence that says what to do (issue 15) ---
def _bad_data(kind, data):
    from datasets import DatasetDict
    tr, va = data["train"], data["validation"]
    relabel = lambda d, ys: d.remove_columns("label").add_column("label", [ys[i % len(ys)] for i in range(len(d))])
    return {"four_ids_two_classes": DatasetDict(train=relabel(tr, [0, 1, 2, 3]), validation=va),
            "ids_from_one": DatasetDict(train=relabel(tr, [1, 2]), validation=va),
            "string_labels": DatasetDict(train=relabel(tr, ["pos", "neg"]), validation=va),
            "label_renamed": DatasetDict(train=tr.rename_column("label", "sentiment"), validation=va),
            "one_dataset": tr,
            "test_not_validation": DatasetDict(train=tr, test=va)}[kind]

@pytest.mark.parametrize("kind, needle", [
    ("four_ids_two_classes", "labels [2, 3] but the head has 2 classes"),
    ("ids_from_one", "labels [2] but the head has 2 classes (ids 0..1)"),
    ("string_labels", "class_encode_column"),
    ("label_renamed", "rename yours with ds.rename_column"),
    ("one_dataset", "not splits"),
    ("test_not_validation", "Keep 'test' for the final number"),
])
def test_bad_data_is_stopped_before_training(tiny, tmp_path, kind, needle):
    prof, tok, data = tiny
    model, _ = load_classifier(prof)
    args = make_training_args(str(tmp_path), prof, max_steps=1, disable_tqdm=True)
    with pytest.raises(ValueError) as e: make_trainer(model, args, _bad_data(kind, data), tok)
    assert needle in str(e.value) and "\n" not in str(e.value)      # one line, naming the fix

def test_no_eval_needs_no_validation_split(tiny, tmp_path):
    from datasets import DatasetDict
    prof, tok, data = tiny
    args = make_training_args(str(tmp_path), prof, max_steps=1, eval_strategy="no", disable_tqdm=True)
    assert make_trainer(load_classifier(prof)[0], args, DatasetDict(train=data["train"]), tok).eval_dataset is None

def test_tokenize_refuses_a_length_that_turns_truncation_off(tiny):
    prof, tok, _ = tiny
    from ft_course.data import load_profile_data
    for bad in (0, None, 4):
        with pytest.raises(ValueError, match="at least 8 tokens"): tokenize(load_profile_data(prof), tok, bad)

def test_load_classifier_takes_your_classes_and_id2label(tiny):
    prof, _, _ = tiny
    m, _ = load_classifier(prof, ["a", "b", "c"])
    assert m.config.num_labels == 3 and m.classifier.out_features == 3 and m.config.id2label[2] == "c"
    m, _ = load_classifier(prof, id2label={0: "no", 1: "maybe", 2: "yes"})      # raised "got multiple values" before
    assert m.config.label2id == {"no": 0, "maybe": 1, "yes": 2}
    with pytest.raises(ValueError, match="one name per class"): load_classifier(prof, ["a"])
