"""Solutions to the exercises of `06_prompt_tuning.ipynb`, on the `tiny` profile (exercise 3's accuracy part needs the
`cpu` profile; the test checks the sequence lengths and the time per step).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import dataclasses, tempfile, time
import torch
from peft import PromptTuningConfig, PromptTuningInit, PrefixTuningConfig, TaskType, get_peft_model
from ft_course.setup import get_profile
from ft_course.data import load_profile_data, tokenize
from ft_course.train import load_classifier, make_training_args, make_trainer, count_parameters
from ft_course.prompt_tuning import SoftPromptConfig, SoftPromptModel

INIT_TEXT = "Classify if the sentiment of this movie review is positive or negative"

def _setup(profile="tiny", n_train=128):
    prof = dataclasses.replace(get_profile(profile), n_train=n_train)
    model, tok = load_classifier(prof)
    return prof, model, tok

def exercise_1(steps:int=8, num_virtual_tokens:int=20)->dict:
    """Swap `PromptTuningInit.TEXT` for `RANDOM` in the tiny run and compare the norm of the prompt vectors before
    and after training with the norm of the word embeddings.

    `RANDOM` draws N(0, 1) vectors: norm ~ sqrt(C) = 8 for C = 64, while the tiny model's word embeddings (init std
    0.02) have norm ~0.16: the random prompt is ~50x too large, and Adam's steps (~lr each) barely change that in a
    short run. `TEXT` starts exactly at word-embedding scale. Returns mean norms (prompt before/after, words)."""
    out = {}
    for init in ("RANDOM", "TEXT"):
        prof, model, tok = _setup()
        words = model.get_input_embeddings().weight.detach().norm(dim=1).mean().item()
        kw = dict(prompt_tuning_init_text=INIT_TEXT, tokenizer_name_or_path=prof.classifier) if init == "TEXT" else {}
        pm = get_peft_model(model, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=num_virtual_tokens,
                                                      prompt_tuning_init=getattr(PromptTuningInit, init), **kw))
        norm = lambda: pm.get_prompt_embedding_to_save("default").norm(dim=1).mean().item()
        before = norm()
        data = tokenize(load_profile_data(prof), tok, min(prof.max_length, model.config.max_position_embeddings - num_virtual_tokens))
        args = make_training_args(tempfile.mkdtemp(), prof, learning_rate=3e-2, max_steps=steps, eval_strategy="no", disable_tqdm=True)
        make_trainer(pm, args, data, tok).train()
        out[init] = dict(prompt_before=before, prompt_after=norm(), word_embeddings=words)
    return out

def exercise_2(steps:int=30, lr:float=3e-2, n_fit:int=16)->dict:
    """Train `SoftPromptModel` on the tiny classifier with a plain AdamW loop and `modules_to_save=[]` (prompt
    only, random head frozen). What accuracy can it reach, and why?

    With the head frozen, the prompt can only move the `[CLS]`-position hidden state (position 0 is now virtual
    token 0, which attends to the sentence) inside what the frozen random encoder, pooler and head can express.
    The random head is a fixed direction, so the prompt can still fit a small set (here `n_fit` rows: the
    training loss falls), but on the tiny random model held-out accuracy stays near the majority class (~54%):
    20 x 64 = 1,280 parameters steering a random network. On the `cpu` profile, a frozen random head over MiniLM's
    pooler is the same story: train the head (`modules_to_save` default). Returns losses and accuracies."""
    prof, model, tok = _setup()
    torch.manual_seed(0)
    sp = SoftPromptModel(model, SoftPromptConfig(num_virtual_tokens=20, modules_to_save=[]))
    trainable = [n for n, p in sp.named_parameters() if p.requires_grad]
    data = tokenize(load_profile_data(prof), tok, 64)
    def batch(split, n):
        d = data[split].select(range(min(n, len(data[split]))))
        b = tok.pad({k: list(d[k]) for k in d.column_names if k != "label"}, return_tensors="pt")
        return b, torch.tensor(list(d["label"]))
    xb, yb = batch("train", n_fit)
    xv, yv = batch("validation", 128)
    opt = torch.optim.AdamW([sp.prompt_embeddings], lr=lr, weight_decay=0.0)
    head0 = model.classifier.weight.detach().clone()
    losses = []
    sp.train()
    for _ in range(steps):
        loss = sp(**xb, labels=yb).loss
        opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
    sp.eval()
    with torch.no_grad():
        train_acc = (sp(**xb).logits.argmax(-1) == yb).float().mean().item()
        val_acc = (sp(**xv).logits.argmax(-1) == yv).float().mean().item()
    return dict(trainable=trainable, first_loss=losses[0], last_loss=losses[-1], train_accuracy=train_acc,
                val_accuracy=val_acc, majority=max(yv.float().mean().item(), 1 - yv.float().mean().item()),
                head_moved=(model.classifier.weight - head0).abs().max().item())

def exercise_3(tokens=(5, 20, 100), steps:int=3, profile:str="tiny")->dict:
    """Set `num_virtual_tokens` to 5, 20 and 100 on the `cpu` profile for one epoch at the best learning rate. How do
    time per step and accuracy change?

    Time measured on the `tiny` profile (forward + backward of one 32-row batch, best of `steps`): the padded batch
    is 52 tokens + n (57, 72, 152), and the step time grows with it (attention is quadratic, the rest linear); 100
    virtual tokens cost several times the step time of 5. Accuracy needs `profile="cpu"` and a full epoch.
    Returns {n: (mean sequence length fed to the encoder, seconds per step)}."""
    res = {}
    for n in tokens:
        prof, model, tok = _setup(profile)
        pm = get_peft_model(model, PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=n))
        data = tokenize(load_profile_data(prof), tok, min(prof.max_length, model.config.max_position_embeddings - n))
        d = data["train"].select(range(32))
        b = tok.pad({k: list(d[k]) for k in d.column_names if k != "label"}, return_tensors="pt")
        y = torch.tensor(list(d["label"]))
        times = []
        for _ in range(steps):
            t0 = time.perf_counter(); pm(**b, labels=y).loss.backward(); times.append(time.perf_counter() - t0)
        res[n] = dict(seq_len=b["input_ids"].shape[1] + n, real_tokens=float(b["attention_mask"].sum(1).float().mean()) + n,
                      s_per_step=min(times))
    return res

def exercise_4(num_virtual_tokens:int=20)->dict:
    """Replace the prompt with `peft`'s `PrefixTuningConfig` (learned keys and values in every layer instead of
    input vectors) and compare the trainable parameter count and the accuracy.

    Prompt tuning trains n x C; prefix tuning (no reparametrisation) trains n x 2 x L x C (a key and a value per
    layer): 2L = 4x more on the tiny model (12x on MiniLM's 6 layers), plus the same head. Accuracy: compare on
    the `cpu` profile; here we check the counts and that both models run (peft 0.21 supports BERT prefixes)."""
    res = {}
    for name, cfg in (("prompt", PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=num_virtual_tokens)),
                      ("prefix", PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=num_virtual_tokens))):
        prof, model, tok = _setup()
        c = model.config
        pm = get_peft_model(model, cfg)
        b = tok(["a good film", "a dull and boring movie"], padding=True, return_tensors="pt")
        loss = pm(**b, labels=torch.tensor([1, 0])).loss
        loss.backward()
        head = c.hidden_size * c.num_labels + c.num_labels
        res[name] = dict(trainable=count_parameters(pm)[0], head=head, layers=c.num_hidden_layers, hidden=c.hidden_size,
                         loss=loss.item())
    return res
