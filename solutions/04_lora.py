"""Solutions to the exercises of `04_lora.ipynb`, on the `tiny` profile (the accuracy parts of exercises 2 and 4
need the `cpu` profile: the functions take `profile=`, the tests check the parameter counts and mechanics).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import dataclasses, json, tempfile
import torch
from torch import nn
from peft import LoraConfig, PeftModel, get_peft_model
from ft_course.setup import get_profile
from ft_course.data import load_profile_data, tokenize
from ft_course.train import load_classifier, make_training_args, make_trainer, count_parameters, log_frame
from ft_course.lora import find_target_modules

def _setup(profile="tiny", n_train=128):
    prof = dataclasses.replace(get_profile(profile), n_train=n_train)
    model, tok = load_classifier(prof)
    return prof, model, tok, tokenize(load_profile_data(prof), tok, prof.max_length)

def _train(pm, prof, data, tok, **kw):
    args = make_training_args(tempfile.mkdtemp(), prof, eval_strategy="no", disable_tqdm=True, logging_steps=1, **kw)
    tr = make_trainer(pm, args, data, tok); tr.train(); return tr

def _delta_norm(pm)->float:
    "Norm of all LoRA updates `scaling * B @ A`, i.e. how far the adapted weights moved"
    tot = 0.0
    for m in pm.modules():
        if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {}):
            dW = m.scaling["default"] * m.lora_B["default"].weight @ m.lora_A["default"].weight
            tot += dW.pow(2).sum().item()
    return tot ** 0.5

def exercise_1(r:int=64, lora_alpha:int=16, steps:int=4)->dict:
    """Set `use_rslora=True` in `LoraConfig` for r = 64 and compare with `lora_alpha / r` scaling at the same
    `lora_alpha`. Which one learns faster in one epoch?

    rsLoRA scales by `lora_alpha / sqrt(r)` = 16/8 = 2 instead of 16/64 = 0.25: 8x larger. Adam's update of `lora_B`
    has about the same size whatever the scale, so the weight update `scaling * B @ A` is ~8x larger with rsLoRA:
    at r=64 it learns faster (Kalajdzievski 2023: with `alpha/r` large ranks barely learn). Solved with a few
    steps on the tiny profile (same seed, same A init); returns scalings and the norm of the update per run."""
    out = {}
    for rs in (False, True):
        prof, model, tok, data = _setup()
        torch.manual_seed(0)
        pm = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=r, lora_alpha=lora_alpha, use_rslora=rs,
                                              target_modules=["query", "value"]))
        tr = _train(pm, prof, data, tok, max_steps=steps, warmup_steps=0)
        layer = pm.base_model.model.bert.encoder.layer[0].attention.self.query
        out["rslora" if rs else "alpha/r"] = dict(scaling=layer.scaling["default"], delta_norm=_delta_norm(pm),
                                                  last_loss=float(log_frame(tr)[0]["loss"].iloc[-1]))
    return out

class MeanPooler(nn.Module):
    "Parameter-free replacement for BERT's pooler: mean of the token states under the attention mask"
    def __init__(self): super().__init__(); self.mask = None
    def forward(self, hidden):                                  # (B, T, C) -> (B, C)
        m = torch.ones(hidden.shape[:2]) if self.mask is None else self.mask
        m = m.to(hidden.dtype)[..., None]
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)

def mean_pooled(model):
    "Make a `BertForSequenceClassification` classify mean-pooled features (no pooler weights)"
    pooler = MeanPooler()
    model.bert.pooler = pooler
    def grab(mod, args, kwargs): pooler.mask = kwargs.get("attention_mask"); return None
    model.register_forward_pre_hook(grab, with_kwargs=True)
    return model

def exercise_2(profile:str="tiny", train:bool=False)->dict:
    """Train LoRA with `modules_to_save=["classifier"]` only and with `["classifier", "pooler"]` on the `cpu`
    profile. Then make the classifier read mean-pooled features: which fix costs fewer trainable parameters?

    Trainable parameters: the pooler is a C x C dense layer (+ bias): C*C + C more (147,840 on MiniLM, 4,160 on
    the tiny model). Mean pooling has no parameters at all, so it trains only the adapters + the classifier:
    mean pooling is the cheaper fix. The accuracy comparison needs `profile="cpu", train=True` (minutes); the
    test checks the counts and that the mean-pooled model runs and depends on the mask."""
    res = {}
    for name in ("classifier", "classifier+pooler", "mean-pooled"):
        prof, model, tok, data = _setup(profile)
        if name == "mean-pooled": model = mean_pooled(model)
        mts = ["classifier", "pooler"] if name == "classifier+pooler" else ["classifier"]
        pm = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"],
                                              modules_to_save=mts))
        res[name] = dict(trainable=count_parameters(pm)[0], hidden=model.config.hidden_size)
        if train: res[name]["accuracy"] = (tr := _train(pm, prof, data, tok, num_train_epochs=1)).evaluate()["eval_accuracy"]
        if name == "mean-pooled":   # the padding does not change the mean-pooled prediction
            pm.eval(); one = tok(["a good film"], return_tensors="pt")
            two = tok(["a good film", "a much longer and rather bad film"], padding=True, return_tensors="pt")
            with torch.no_grad(): res[name]["pad_invariance"] = (pm(**one).logits[0] - pm(**two).logits[0]).abs().max().item()
    return res

def exercise_3()->dict:
    """Load the adapter saved above into a fresh base model without `task_type="SEQ_CLS"` in its config.
    What happens to the classifier?

    Two readings, both measured. (a) As written: train with `task_type="SEQ_CLS"`, save, delete `task_type` from
    `adapter_config.json`, reload into a fresh base (different random head). `modules_to_save: ["classifier",
    "score"]` is stored in the config and the head is in the file, so the trained head is restored and the logits
    are identical (only the wrapper class changes: `PeftModel` instead of `PeftModelForSequenceClassification`).
    (b) The tutorial mistake: *train* without `task_type`. The head is frozen at random, is not saved, and a reload
    gets another random head: different predictions."""
    prof, _, tok, data = _setup(n_train=64)
    batch = tok(["a good film", "a dull and boring movie"], padding=True, return_tensors="pt")
    out = {}
    for case, task in (("a: task_type dropped at load", "SEQ_CLS"), ("b: trained without task_type", None)):
        torch.manual_seed(1); model, _ = load_classifier(prof)
        pm = get_peft_model(model, LoraConfig(task_type=task, r=8, lora_alpha=16, target_modules=["query", "value"]))
        _train(pm, prof, data, tok, max_steps=2)
        d = tempfile.mkdtemp(); pm.save_pretrained(d)
        pm.eval()
        with torch.no_grad(): ref = pm(**batch).logits
        cfg = json.loads(open(f"{d}/adapter_config.json").read()); cfg.pop("task_type", None)
        open(f"{d}/adapter_config.json", "w").write(json.dumps(cfg))
        from safetensors import safe_open
        with safe_open(f"{d}/adapter_model.safetensors", "pt") as f: saved_head = any("classifier" in k for k in f.keys())
        fresh, _ = load_classifier(prof)
        # the tiny model's folder stores a (random) classifier, so every load gets the same one; a real base model
        # (MiniLM, bert-base) has none and `from_pretrained` draws a new one. Do that draw explicitly:
        torch.manual_seed(2); fresh.classifier.reset_parameters()
        re = PeftModel.from_pretrained(fresh, d).eval()
        with torch.no_grad(): new = re(**batch).logits
        out[case] = dict(head_in_file=saved_head, wrapper=type(re).__name__, max_logit_diff=(new - ref).abs().max().item())
    return out

def exercise_4(profile:str="tiny", train:bool=False)->dict:
    """Use `find_target_modules(model, r".*layer\\.[1]\\..*(query|value)")` to adapt only the last layer. How many
    parameters train, and how does accuracy compare with all layers?

    The regex selects `query` and `value` of layer 1 only (the last of the tiny model's 2 layers; on MiniLM use
    `[5]`). LoRA params are r*(in+out) per module, so the last layer alone trains half the adapters of 2 layers
    (a sixth on MiniLM's 6); the head is the same. Accuracy needs `profile="cpu", train=True`; on the random tiny
    model it means nothing, so the test checks the counts."""
    res = {}
    for name in ("last layer", "all layers"):
        prof, model, tok, data = _setup(profile)
        targets = find_target_modules(model, r".*layer\.[1]\..*(query|value)") if name == "last layer" else ["query", "value"]
        pm = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=targets))
        lora = sum(p.numel() for n, p in pm.named_parameters() if "lora_" in n)
        res[name] = dict(targets=targets, trainable=count_parameters(pm)[0], lora=lora)
        if train: res[name]["accuracy"] = _train(pm, prof, data, tok, num_train_epochs=1).evaluate()["eval_accuracy"]
    return res
