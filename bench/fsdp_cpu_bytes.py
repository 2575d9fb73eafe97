"""Per-rank bytes of parameters, gradients and AdamW state under FSDP2 full sharding (`fully_shard`), on CPU with
2 processes and the gloo backend, against the per-GPU terms `ft_course.scale.per_gpu_memory` predicts (notebook 10d).

    python bench/fsdp_cpu_bytes.py            # writes bench/results/fsdp_cpu_bytes.json (this command at its top)
    python bench/fsdp_cpu_bytes.py OUT.json   # elsewhere (notebook 10d reruns it this way)

The tiny profile's classifier, one forward/backward/AdamW step on random tokens; each rank sums, over its local shards
(`DTensor.to_local()`), numel x element size. fp32 throughout: this is the bookkeeping, not a mixed-precision run.
"""
import json, os, sys, warnings
from pathlib import Path

import torch, torch.distributed as dist, torch.multiprocessing as mp

OUT = Path(__file__).resolve().parent/"results"/"fsdp_cpu_bytes.json"

def local_bytes(tensors)->int:
    "Bytes this rank holds: a DTensor's local shard, a plain tensor whole"
    return sum((t.to_local() if hasattr(t, "to_local") else t).numel() * t.element_size() for t in tensors)

def _worker(rank:int, world:int, port:int, q):
    warnings.filterwarnings("ignore")
    os.environ |= dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from torch.distributed.fsdp import fully_shard
    from transformers import AutoModelForSequenceClassification
    from ft_course.setup import get_profile
    torch.manual_seed(0)
    from transformers.utils import logging; logging.disable_progress_bar()
    model = AutoModelForSequenceClassification.from_pretrained(get_profile("tiny").classifier, num_labels=2)
    n_params = sum(p.numel() for p in model.parameters())
    mesh = torch.distributed.device_mesh.init_device_mesh("cpu", (world,))
    for layer in model.base_model.encoder.layer: fully_shard(layer, mesh=mesh)   # one unit per block, then the rest
    fully_shard(model, mesh=mesh)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(3, model.config.vocab_size, (4, 16), generator=torch.Generator().manual_seed(rank))
    model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss.backward(); opt.step()
    states = [t for s in opt.state.values() for k, t in s.items() if torch.is_tensor(t) and k != "step"]
    q.put(dict(rank=rank, params=local_bytes(model.parameters()), grads=local_bytes(p.grad for p in model.parameters()),
               optimizer_states=local_bytes(states), n_params=n_params))
    dist.destroy_process_group()

def main(out:Path=OUT, world:int=2):
    ctx = mp.get_context("spawn"); q = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, world, 29611, q)) for r in range(world)]
    for p in procs: p.start()
    ranks = sorted((q.get(timeout=300) for _ in procs), key=lambda r: r["rank"])
    for p in procs: p.join()
    if any(p.exitcode for p in procs): sys.exit(f"a rank failed: exit codes {[p.exitcode for p in procs]}")
    P = ranks[0]["n_params"]
    res = dict(command="python bench/fsdp_cpu_bytes.py", torch=torch.__version__, backend="gloo", world_size=world, n_params=P,
               unsharded=dict(params=4 * P, grads=4 * P, optimizer_states=8 * P), ranks=ranks)
    Path(out).write_text(json.dumps(res, indent=1) + "\n")
    return res

if __name__ == "__main__": print(json.dumps(main(*sys.argv[1:2]), indent=1))
