"""Solutions to the exercises of `10d_scale.ipynb` (the estimator: instant; exercises 3 and 4 train the tiny classifier
with `bench/ddp_train.py`, one run on 2 processes: about a minute on 2 cores).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
import json, os, subprocess, sys, tempfile
from pathlib import Path

from ft_course.memory import GPUS, estimate_memory
from ft_course.scale import SHARDINGS, per_gpu_memory, scale_table

ROOT = Path(__file__).resolve().parents[1]
GiB = 2**30

def exercise_1(card:str="24GB (L4/A10/4090)", max_gpus:int=64)->dict:
    """Full fine-tuning of Llama-3.2-3B, micro-batch 2 x 1,024 tokens, bf16: the fewest 24 GB GPUs under ZeRO-3, against
    QLoRA (r16, checkpointing) on one card.

    ZeRO-3 divides weights, gradients and AdamW state, but every GPU keeps its own activations and logits (micro-batch 2 x
    1,024 tokens of a 128k vocabulary) and the gathered working set: that floor decides whether any number of cards fits.
    QLoRA fits one card; what it gives up is full fine-tuning itself (a rank-16 update on a 4-bit base) and speed per
    step (dequantisation); ZeRO-3 gives up nothing in the update but buys N cards and an all-gather per layer per step."""
    cap, kw = GPUS[card], dict(method="full", batch_size=2, seq_len=1024, precision="bf16")
    need = {n: per_gpu_memory("Llama-3.2-3B", gpus=n, sharding="zero3", **kw).total for n in range(1, max_gpus + 1)}
    fits = [n for n, b in need.items() if b <= cap]
    qlora = estimate_memory("Llama-3.2-3B", method="qlora", gradient_checkpointing=True, batch_size=2, seq_len=1024, precision="bf16")
    return dict(zero3_gpus=fits[0] if fits else None, zero3_gib=round(need[fits[0]] / GiB, 1) if fits else None,
                floor_gib=round(need[max_gpus] / GiB, 1), qlora_one_card_gib=round(qlora.total / GiB, 1),
                qlora_fits=qlora.total <= cap, card_gib=round(cap / GiB, 1))

def with_buckets(config, gpus:int=1, sharding:str="ddp", bucket_view:bool=False, **spec):
    """`per_gpu_memory` plus DDP's gradient buckets: under `ddp`, a second copy of the gradients (the buckets all-reduce
    flattened copies) unless `gradient_as_bucket_view=True` makes the gradients views into the buckets. One GPU: no DDP."""
    e = per_gpu_memory(config, gpus=gpus, sharding=sharding, **spec)
    if sharding != "ddp" or bucket_view or gpus == 1: return e
    return e.with_terms(gradients=2 * e.gradients)          # the gradients and their bucket copy are live together

def exercise_2(gpus=(1, 2, 4, 8))->dict:
    """Which rows of the Llama-3.1-8B table (full, bf16, micro-batch 1 x 1,024, checkpointing) move with DDP's buckets,
    and by how many GiB: only `ddp` with 2 or more GPUs (ZeRO-2/3 reduce-scatter into their shards; one GPU runs no DDP),
    by one fp32 copy of the gradients (8B x 4 bytes, about 30 GiB) plus its share of the overhead."""
    kw = dict(method="full", batch_size=1, seq_len=1024, gradient_checkpointing=True)
    plain = scale_table("Llama-3.1-8B", gpus=gpus, **kw)
    moved = {s: [float(round(with_buckets("Llama-3.1-8B", n, s, **kw).total / GiB - plain.loc[s, c], 1)) + 0.0 for n, c in zip(gpus, plain.columns)]
             for s in SHARDINGS}
    return dict(moved=moved, grads_gib=round(estimate_memory("Llama-3.1-8B", **kw).gradients / GiB, 1))

LAUNCH = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29641"]

def _curves(*runs)->list[list]:
    "The logged losses of `bench/ddp_train.py` runs, each `(args, launch)`, started together (one thread each)"
    env = os.environ | {"FT_PROFILE": "tiny", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    outs = [Path(tempfile.mkdtemp())/"curve.json" for _ in runs]
    procs = [subprocess.Popen([sys.executable, *launch, str(ROOT/"bench"/"ddp_train.py"), *map(str, args), "--out", str(o)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for (args, launch), o in zip(runs, outs)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    for p, e in zip(procs, errs):
        if p.returncode: raise RuntimeError(e[-2000:])
    return [json.loads(o.read_text())["losses"] for o in outs]

def gap(a, b): return max(abs(x - y) for x, y in zip(a, b))

def exercise_3(steps:int=6)->dict:
    """Dropout on: 2 processes x 8 against 1 process x 16 (same seed), and two 1-process runs with seeds 42 and 1.

    Each rank draws its own dropout masks, so the 2-process run no longer repeats the 1-process arithmetic: the curves
    differ by about as much as two seeds do (here the seed also changes the data order), far above the 1e-5 of the
    dropout-free check. That is why the test turns dropout off: equality is only checkable where the randomness is shared."""
    one, other_seed = _curves((("--batch", 16, "--steps", steps, "--dropout"), ()),
                              (("--batch", 16, "--steps", steps, "--dropout", "--seed", 1), ()))
    two, = _curves((("--batch", 8, "--steps", steps, "--dropout"), LAUNCH))
    return dict(ddp_vs_one=gap(two, one), seed_vs_seed=gap(other_seed, one))

def exercise_4(steps:int=6)->dict:
    """The control with the same global batch (16) but learning rate 2e-3: one process each, since 2 x 8 equals 1 x 16.

    It still separates the runs from step 2 on; at step 1 both log the loss of the same first batch before any update,
    so a check on the first loss alone could not tell them apart. A control that must fail shows the comparison can
    fail: without it, a test whose tolerance is too wide, or whose two runs are secretly the same run, passes forever."""
    base, fast = _curves((("--batch", 16, "--steps", steps), ()), (("--batch", 16, "--steps", steps, "--lr", 2e-3), ()))
    return dict(first_step=abs(base[0] - fast[0]), max_gap=gap(base, fast))
