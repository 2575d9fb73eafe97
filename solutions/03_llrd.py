"""Solutions to the exercises of `03_llrd.ipynb`, on the `tiny` profile unless stated.

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import dataclasses, tempfile
from ft_course.setup import get_profile
from ft_course.data import load_profile_data, tokenize
from ft_course.train import load_classifier, make_training_args, make_trainer, log_frame
from ft_course.llrd import LLRDConfig, llrd_optimizer, LayerLRLogger, GradualUnfreezing, find_layers

def _setup(prof=None, n_train=128):
    prof = dataclasses.replace(prof or get_profile("tiny"), n_train=n_train)
    model, tok = load_classifier(prof)
    return prof, model, tok, tokenize(load_profile_data(prof), tok, prof.max_length)

def exercise_1(layer_decay:float=0.8, steps:int=10):
    """Plot `lr/<name>` from `log_frame(trainer)[0]` for an LLRD run with `warmup_steps=0.1`: one curve per layer,
    all the same shape.

    Returns the train log's `lr/*` columns. The scheduler multiplies every group's initial rate by the same factor
    (warmup, then linear decay), so each curve is the head's curve times `layer_decay ** depth`: dividing any
    column by `lr/head` gives a constant."""
    prof, model, tok, data = _setup()
    args = make_training_args(tempfile.mkdtemp(), prof, max_steps=steps, logging_steps=1, eval_strategy="no",
                              warmup_steps=0.1, disable_tqdm=True)
    opt = llrd_optimizer(model, LLRDConfig(learning_rate=prof.learning_rate, layer_decay=layer_decay))
    tr = make_trainer(model, args, data, tok, optimizers=(opt, None), callbacks=[LayerLRLogger()])
    tr.train()
    log = log_frame(tr)[0]
    return log[[c for c in log.columns if c.startswith("lr/")]]

def exercise_2(profile:str="tiny", epochs:int=3, n_train:int=64):
    """Combine `GradualUnfreezing` with `layer_decay=1/2.6` as ULMFiT did, on the `cpu` profile for 3 epochs.
    Which layers did the run ever train?

    Solved on the `tiny` profile (2 layers, 64 rows) by default; `profile="cpu", n_train=4000` is the exercise as
    written. Epoch 0 trains the head, epoch 1 adds the top layer, epoch 2 the next one: after 3 epochs the units
    ever trained are the head and the top 2 layers. On the tiny model (2 layers) that is every layer, but never
    the embeddings; on MiniLM (6 layers) layers 0-3 and the embeddings never train. Returns (unfreezing history,
    {unit: max |weight change|})."""
    prof, model, tok, data = _setup(get_profile(profile), n_train)
    before = {n: [p.detach().clone() for p in ps] for n, ps in _units(model)}
    args = make_training_args(tempfile.mkdtemp(), prof, num_train_epochs=epochs, eval_strategy="no",
                              warmup_steps=0, weight_decay=0.0, disable_tqdm=True)
    gu = GradualUnfreezing()
    opt = llrd_optimizer(model, LLRDConfig(learning_rate=prof.learning_rate, layer_decay=1/2.6, weight_decay=0.0))
    tr = make_trainer(model, args, data, tok, optimizers=(opt, None), callbacks=[gu])
    tr.train()
    # weight decay 0: a frozen parameter (no gradient) is skipped by AdamW, so "changed" means "trained"
    changed = {n: max((p - b).abs().max().item() for p, b in zip(ps, before[n])) for n, ps in _units(model)}
    return gu.history, changed

def _units(model):
    from ft_course.llrd import layer_units
    return layer_units(model)

def exercise_3():
    """GPT-2 is not in `find_layers`' table. Build LLRD groups for `GPT2ForSequenceClassification` with
    `layers_path=` and `embeddings_path=`, then check where `transformer.wpe` (position embeddings) ended up.

    Built from a tiny random `GPT2Config` (no Hub). With `embeddings_path="transformer.wte"`, the position
    embeddings `transformer.wpe` are neither the embeddings nor a layer, so they fall into the remainder, the
    "head" unit, and get the *highest* learning rate (depth 0), the opposite of what LLRD intends (they are the
    most general parameters). Not what you want: wrap `wte` and `wpe` in one unit, or move `wpe` by hand to the
    embeddings' group. Returns {name of the group holding wpe, its depth, its lr, the embeddings' lr}."""
    from transformers import GPT2Config, GPT2ForSequenceClassification
    model = GPT2ForSequenceClassification(GPT2Config(n_embd=32, n_layer=3, n_head=2, vocab_size=100, n_positions=64, bos_token_id=1, eos_token_id=1,
                                                     pad_token_id=0))
    paths = dict(layers_path="transformer.h", embeddings_path="transformer.wte")
    find_layers(model, **paths)   # works with the paths (and raises without them: GPT-2 is not in the table)
    from ft_course import llrd
    units = llrd.layer_units(model, **paths)
    wpe = model.transformer.wpe.weight
    unit = next(n for n, ps in units if any(p is wpe for p in ps))
    lr = dict(base=1e-4, decay=0.5)
    depth = len(units) - 1 - [n for n, _ in units].index(unit)
    return dict(unit=unit, depth=depth, wpe_lr=lr["base"] * lr["decay"] ** depth,
                embeddings_lr=lr["base"] * lr["decay"] ** (len(units) - 1))

def exercise_4(profile:str="cpu", n_train:int=2000, decays=(1.0, 0.95, 0.9, 0.8), head_lrs=(5e-5, 1e-4))->dict:
    """On the `cpu` profile, sweep `layer_decay` in {1.0, 0.95, 0.9, 0.8} at head rates 5e-5 and 1e-4. Where does
    the best decay move when the head rate doubles?

    Needs the `cpu` profile (MiniLM) and 8 runs of about a minute each, so the test skips it unless
    `FT_SOLUTIONS_CPU=1`. Expectation to check against the measurement: with a higher head rate, the lower
    layers already get enough, so the best decay moves *down* (stronger decay). Returns {(head_lr, decay): dev acc}."""
    prof, _, tok, data = _setup(get_profile(profile), n_train)
    res = {}
    for lr in head_lrs:
        for d in decays:
            model, _ = load_classifier(prof)
            args = make_training_args(tempfile.mkdtemp(), prof, num_train_epochs=1, disable_tqdm=True)
            tr = make_trainer(model, args, data, tok, optimizers=(llrd_optimizer(model, LLRDConfig(lr, d)), None))
            tr.train(); res[(lr, d)] = tr.evaluate()["eval_accuracy"]
    return res
