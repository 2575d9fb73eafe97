"""Solutions to the exercises of `01_data.ipynb`. Exercise 1 needs the offline IMDB files and the MiniLM tokenizer
(`cpu` profile): the test skips it when they are missing.

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import numpy as np
from transformers import AutoTokenizer
from ft_course.setup import get_profile, minilm_path
from ft_course.data import load_sentiment, load_profile_data, token_lengths, padding_fraction, plot_token_lengths

def exercise_1(n:int|None=2000, max_length:int=512, plot:bool=False)->dict:
    """Load IMDB with the `cpu` profile's tokenizer (`AutoTokenizer.from_pretrained(minilm_path())`) and plot its
    token lengths with `max_length=512`. What share of reviews does BERT truncate?

    Measured on the offline IMDB sample (`shared/data/imdb/imdb_2000.csv`: 1,600 training rows after the 80/20
    split): 12.8% of the reviews are longer than 512 WordPiece tokens, so about one review in eight is truncated
    (the 95th percentile is ~740 tokens); the median review is 225 tokens. With `source="hub"` the full 25,000
    reviews give about the same share."""
    tok = AutoTokenizer.from_pretrained(minilm_path())
    ds = load_sentiment("imdb", "local", n_train=n, n_eval=8)["train"]
    lengths = token_lengths(ds, tok)
    if plot: plot_token_lengths(lengths, max_length, title="IMDB (MiniLM tokenizer)")
    return dict(n=len(lengths), truncated_share=float((lengths > max_length).mean()), median=float(np.median(lengths)),
                p95=float(np.percentile(lengths, 95)))

def _sorted_padding(lengths, batch_size):
    "Padding share when batches are cut from the length-sorted order (shuffling the batches does not change it)"
    L = np.sort(np.asarray(lengths))
    real = padded = 0
    for i in range(0, len(L), batch_size):
        b = L[i:i + batch_size]; real += b.sum(); padded += b.max() * len(b)
    return 1 - real / padded

def exercise_2(batch_size:int=32)->dict:
    """Sort the SST-2 training set by length before batching (what `group_by_length=True` in `TrainingArguments`
    approximates). How much padding is left with dynamic padding? Why is fully sorted order a bad idea?

    On the tiny profile's 512 rows (its tokenizer, max_length 64), measured: dynamic padding over shuffled batches
    of 32 is 67% padding (SST-2 mixes 3-word phrases with 50-word sentences); sorted batches leave ~10%. Fully sorted order is bad for training:
    every batch is made of sentences of one length, so consecutive batches are correlated (short, then long:
    SST-2's short rows are phrases, the long ones whole reviews), the gradient is biased within each stretch of
    the epoch, and the order is the same every epoch. `group_by_length` keeps randomness: it shuffles, sorts only
    within mega-batches of 50 batches, and puts the longest batch first (so an out-of-memory shows at step 1)."""
    prof = get_profile("tiny")
    tok = AutoTokenizer.from_pretrained(prof.classifier)
    lengths = np.minimum(token_lengths(load_profile_data(prof)["train"], tok), prof.max_length)
    return dict(shuffled=padding_fraction(lengths, batch_size), sorted=_sorted_padding(lengths, batch_size),
                static_64=padding_fraction(lengths, batch_size, pad_to=prof.max_length))

def exercise_3(n:int=2000, seeds=range(8), eval_frac:float=0.2)->dict:
    """`load_sentiment` stratifies its split. Make a 2,000-row split without `stratify_by_column` a few times with
    different seeds and look at the label balance of the validation set.

    Unstratified, the positive share of a 400-row validation set moves by a few points from seed to seed
    (binomial noise: sd = sqrt(p(1-p)/400) ~ 2.5 points), so "accuracy" moves with it by chance; stratified, it is
    the same for every seed (equal to the pool's share to within one row). Returns the positive share per seed."""
    from ft_course.setup import data_dir
    pool = load_sentiment("sst2", "local" if data_dir() else "generated", n_train=n, n_eval=8)["train"]   # labels are already a ClassLabel
    out = {"plain": [], "stratified": [], "pool": float(np.mean(list(pool["label"])))}
    for s in seeds:
        for kind, kw in (("plain", {}), ("stratified", dict(stratify_by_column="label"))):
            val = pool.train_test_split(test_size=eval_frac, seed=s, **kw)["test"]
            out[kind].append(float(np.mean(list(val["label"]))))
    return out
