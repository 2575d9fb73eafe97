"""Solutions to the exercises of `07b_dpo.ipynb` (tiny profile: random tiny models, seconds; the cpu answers need
`bench/dpo_cpu.py`'s setting and minutes).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import os, tempfile
from pathlib import Path
os.environ.setdefault("TQDM_DISABLE", "1")
import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM
from ft_course.setup import get_profile
from ft_course.evaluation import load_chat_model, sst2_splits, generate_answers, parse_strict, get_labels, sentiment_prompt
from ft_course.dpo import dpo_trainer, preference_pair

def _setup(n=16):
    p = get_profile("tiny")
    rows = sst2_splits(n, 4, 4, p.source)["train"]
    model, tok = load_chat_model(p)
    folder = Path(tempfile.mkdtemp())/"sft"
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")).save_pretrained(folder)
    return p, rows, tok, folder

def _policy(p, folder): return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(p.causal_lm), folder, is_trainable=True)

def exercise_1(betas=(0.01, 0.1, 0.5), steps:int=4)->dict:
    """Final reward margin and mean |log-ratio| of the chosen answers for each beta: {beta: (margin, drift)}.

    The loss depends on beta * (log-ratio difference), so a small beta needs a large log-ratio (a large move away
    from the reference) to reach the same loss, and the gradient of the loss scales with beta: with a fixed learning
    rate a small beta moves the model less per step but lets it keep moving; a large beta saturates the sigmoid
    sooner. The logged *reward* margin is beta * log-ratio, so compare drift (log-ratio), not margins, across betas."""
    p, rows, tok, folder = _setup()
    pairs = rows.map(preference_pair, remove_columns=rows.column_names)
    out = {}
    for b in betas:
        t = dpo_trainer(_policy(p, folder), tok, pairs, tempfile.mkdtemp(), p, beta=b, max_steps=steps, learning_rate=1e-2)
        t.train()
        last = [h for h in t.state.log_history if "rewards/margins" in h][-1]
        out[b] = (last["rewards/margins"], abs(last["rewards/chosen"]) / b)
    return out

def exercise_2()->dict:
    """SPIN-style pairs: the sentences the model answers wrongly (or invalidly), with its own answer as `rejected`.

    Only the wrong answers give pairs, so a good SFT model leaves few: at 89% validation accuracy (the cpu SFT
    adapter) 240 sentences would give about 26 pairs, too few for a 30-step run of 4 pairs. That is why the notebook
    uses the other label as `rejected` for every sentence."""
    p, rows, tok, folder = _setup()
    model = _policy(p, folder).eval()
    answers = generate_answers(model, tok, [sentiment_prompt(t) for t in rows["text"]], max_new_tokens=4)
    words = get_labels()
    pairs = [{"prompt": [{"role": "user", "content": sentiment_prompt(t)}], "chosen": [{"role": "assistant", "content": words[y]}],
              "rejected": [{"role": "assistant", "content": a}]}
             for t, y, a in zip(rows["text"], rows["label"], answers) if parse_strict(a) != words[y]]
    return dict(sentences=len(rows), pairs=len(pairs), pairs_share=len(pairs) / len(rows))

def exercise_3()->dict:
    """A *new* adapter (`peft_config=` to DPOTrainer): TRL adds no `ref` adapter, the reference is the base model.

    With a fresh LoRA (B = 0) the policy starts equal to the base, so the base is the right reference; starting from
    SFT, the reference must be the SFT adapter, which is why TRL copies it as `ref`."""
    from trl import DPOTrainer
    from ft_course.dpo import make_dpo_config
    p, rows, tok, folder = _setup()
    pairs = rows.map(preference_pair, remove_columns=rows.column_names)
    t = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(p.causal_lm), args=make_dpo_config(tempfile.mkdtemp(), p, max_steps=1),
                   train_dataset=pairs, processing_class=tok,
                   peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    return dict(adapters=sorted(t.model.peft_config), first_loss=t.train().training_loss)

def exercise_4()->dict:
    """Parameters before and after `dpo_trainer`: the reference adds one adapter, not a second base model."""
    p, rows, tok, folder = _setup()
    policy = _policy(p, folder)
    before = sum(x.numel() for x in policy.parameters())
    dpo_trainer(policy, tok, rows.map(preference_pair, remove_columns=rows.column_names), tempfile.mkdtemp(), p)
    after = sum(x.numel() for x in policy.parameters())
    base = sum(x.numel() for n, x in policy.named_parameters() if "lora_" not in n)
    return dict(added=after - before, base=base, added_share=(after - before) / base)
