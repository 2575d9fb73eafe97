"""Solutions to the exercises of `10b_own_data.ipynb`, on the `tiny` profile (runs in CI in seconds).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import re, tempfile
import pandas as pd
from ft_course.setup import get_profile
from ft_course.data import class_names, example_path, load_classification, tokenize
from ft_course.train import load_classifier, make_trainer, make_training_args
from ft_course.cli import main

def exercise_1(folder=None)->dict:
    """Put a CSV of your own through `ft-course compare --data`, after breaking it on purpose three ways: the label
    column renamed, an empty row, labels 1..k. Read each message.

    Here the "own CSV" is a copy of 40 speeches with columns `line` and `who`. Returns, per break, the exit code and
    the one line `ft-course` printed. A renamed column and an empty row stop the run (exit 1) before anything trains;
    labels 1..k are not a mistake for a file: `load_classification` maps them to ids 0..k-1 and keeps the values as
    class names, so that run goes through (exit 0)."""
    import contextlib, io
    folder = folder or tempfile.mkdtemp()
    df = pd.read_csv(example_path()/"train.csv").head(40).rename(columns={"speech": "line", "play": "who"})
    breaks = {"label column renamed": df.rename(columns={"who": "speaker_play"}),
              "an empty row": pd.concat([df, pd.DataFrame({"line": [" "], "who": [df.who[0]]})]),
              "labels 1..k": df.assign(who=df.who.astype("category").cat.codes + 1)}
    out = {}
    for name, d in breaks.items():
        path = f"{folder}/" + re.sub(r"\W+", "_", name) + ".csv"; d.to_csv(path, index=False)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["compare", "--data", path, "--text-col", "line", "--label-col", "who", "--methods", "full",
                         "--max-steps", "1", "--in-process", "--no-plots", "--out", f"{folder}/out"])
        out[name] = (code, (err.getvalue().strip().splitlines() or [""])[-1])
    return out

def mask_names(text:str)->str:
    "Replace capitalised words that do not start a sentence (mostly names: Romeo, Petruchio, Marcius) with 'X'"
    words, out = text.split(), []
    for i, w in enumerate(words):
        starts = i == 0 or words[i - 1][-1] in ".!?;:"
        masked = not starts and re.fullmatch(r"[A-Z][a-z]+\W*", w)
        out.append(re.sub(r"^[A-Z][a-z]+", "X", w) if masked else w)
    return " ".join(out)

def exercise_2(steps:int=8, prof=None)->dict:
    """How much of the accuracy is names? Mask the capitalised words inside sentences and retrain.

    Returns validation accuracy with and without the masking, and the share of words masked. On the `tiny` profile
    the accuracies mean nothing (random model); on `cpu` (`prof=get_profile("cpu")`, `steps=None` for one epoch) the
    drop is the part of the score that came from characters' names rather than style and subject."""
    prof = prof or get_profile("tiny")
    data = load_classification(example_path(), "speech", "play", n_train=prof.n_train, n_eval=prof.n_eval)
    masked = data.map(lambda b: {"text": [mask_names(t) for t in b["text"]]}, batched=True)
    words = lambda d: sum(len(t.split()) for t in d["train"]["text"])
    share = sum(w.startswith("X") for t in masked["train"]["text"] for w in t.split()) / words(data)
    out = {"masked_word_share": share}
    for name, d in (("plain", data), ("masked", masked)):
        model, tok = load_classifier(prof, class_names(d))
        kw = dict(max_steps=steps) if steps else dict(num_train_epochs=1)
        tr = make_trainer(model, make_training_args(tempfile.mkdtemp(), prof, disable_tqdm=True, **kw), tokenize(d, tok, 128), tok)
        tr.train(); out[name] = tr.evaluate()["eval_accuracy"]
    return out

def exercise_3(lrs=(5e-5, 2e-4, 5e-4), steps:int|None=4, prof=None)->dict:
    """Choose on validation, report on test: sweep the full fine-tuning learning rate, pick the best by validation
    accuracy, report its test accuracy once; then see what picking on the test split would have reported.

    Returns per learning rate (validation, test) accuracy, the rate chosen on validation with its test accuracy (the
    honest number), and the best test accuracy of the sweep (what choosing on test reports: never lower, usually
    higher, and it measures the choice as much as the model)."""
    prof = prof or get_profile("tiny")
    data = load_classification(example_path(), "speech", "play", n_train=prof.n_train, n_eval=prof.n_eval)
    runs = {}
    for lr in lrs:
        model, tok = load_classifier(prof, class_names(data))
        kw = dict(max_steps=steps) if steps else dict(num_train_epochs=1)
        tr = make_trainer(model, make_training_args(tempfile.mkdtemp(), prof, learning_rate=lr, disable_tqdm=True, **kw),
                          enc := tokenize(data, tok, 128), tok)
        tr.train()
        runs[lr] = (tr.evaluate()["eval_accuracy"], tr.evaluate(enc["test"], metric_key_prefix="test")["test_accuracy"])
    chosen = max(runs, key=lambda lr: runs[lr][0])
    return dict(runs=runs, chosen=chosen, reported=runs[chosen][1], best_test=max(t for _, t in runs.values()))
