"""Solutions to the exercises of `00_setup.ipynb`. Exercise 3 needs the network and the Hub: the test skips it.

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import os, subprocess, sys
from transformers import BertConfig, BertForSequenceClassification
from ft_course.setup import TINY_BERT, train_tokenizer, tokenizer_corpus, data_dir
from ft_course.train import count_parameters

def _count(vocab_size=2000, **shape):
    "(total, per encoder layer, embeddings) of a tiny BERT classifier built from its config (no weights saved)"
    cfg = BertConfig(vocab_size=vocab_size, **(TINY_BERT | shape))
    m = BertForSequenceClassification(cfg)
    return dict(total=count_parameters(m)[1], per_layer=sum(p.numel() for p in m.bert.encoder.layer[0].parameters()),
                embeddings=sum(p.numel() for p in m.bert.embeddings.parameters()))

def exercise_1(hidden_sizes=(64, 128, 256))->dict:
    """Build a tiny classifier with `num_hidden_layers=4, hidden_size=128` and count its parameters. How does the
    count scale with `hidden_size`?

    Counted from the config (`build_tiny_classifier` would also train and save a tokenizer; the count is the
    same). Per layer: attention 4(C^2 + C), MLP 2*C*I + I + C, two LayerNorms 4C. `TINY_BERT` fixes
    `intermediate_size=128`, so if you only change `hidden_size` the MLP grows linearly and a layer grows ~3x
    per doubling; scale `intermediate_size` with it (BERT uses I = 4C) and a layer grows ~4x: C^2. The embeddings
    (vocab x C + positions x C) grow linearly, so the total grows slower than C^2 while the vocabulary dominates."""
    out = {}
    for C in hidden_sizes:
        out[("fixed I", C)] = _count(num_hidden_layers=4, hidden_size=C)
        out[("I = 2C", C)] = _count(num_hidden_layers=4, hidden_size=C, intermediate_size=2 * C)
    return out

def exercise_2(vocab_sizes=(500, 4000))->dict:
    """Train a `llama` tokenizer with `vocab_size=500` and with `vocab_size=4000` on `tokenizer_corpus()`. How many
    tokens does the first SST-2 sentence take with each? What does a bigger vocabulary cost the model?

    The small vocabulary splits words into more pieces (more tokens per sentence: longer sequences, more compute
    and activation memory per example); the big one costs parameters: the embedding matrix (and an untied LM head)
    is vocab x hidden, 8x larger for 4000 than for 500. Returns token counts and embedding sizes at hidden 64."""
    d = data_dir()
    first = (d/"sst2"/"train.tsv").read_text().splitlines()[1].split("\t")[0] if d else "a gorgeous , witty , seductive movie ."
    texts = tokenizer_corpus(max_lines=5000)     # a smaller corpus than the default keeps this fast; same lesson
    out = {}
    for v in vocab_sizes:
        tok = train_tokenizer("llama", vocab_size=v, texts=texts)
        ids = tok(first, add_special_tokens=False)["input_ids"]
        out[v] = dict(sentence=first, n_tokens=len(ids), vocab=len(tok), embedding_params_h64=len(tok) * 64)
    return out

def exercise_3()->dict:
    """Run `setup_env()` in a fresh kernel with the network off, then time
    `AutoTokenizer.from_pretrained("bert-base-uncased")` with and without `HF_HUB_OFFLINE=1`.

    Needs a machine that has `bert-base-uncased` in its Hub cache and a way to cut the network, so CI cannot run
    it (the test is skipped). Expected answer: with `HF_HUB_OFFLINE=1` the cached files load at once; without
    it, transformers first tries to reach the Hub for every file and waits for connection errors and retries
    before falling back to the cache (seconds to tens of seconds). `setup_env()` sets the offline flags when the
    Hub is unreachable, so notebooks do not pay that wait. Returns seconds per setting, in fresh processes."""
    code = "import time; t=time.time(); from transformers import AutoTokenizer; AutoTokenizer.from_pretrained('bert-base-uncased'); print(time.time()-t)"
    out = {}
    for offline in ("1", "0"):
        env = os.environ | {"HF_HUB_OFFLINE": offline}
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        out[f"HF_HUB_OFFLINE={offline}"] = float(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else r.stderr[-300:]
    return out
