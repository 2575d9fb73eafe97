"""Train the tiny classifier through the course's own helpers (`make_training_args`, `make_trainer`), unchanged, and
write the logged loss curve. Run it plainly (one process) or under `accelerate launch` (several; DDP or FSDP):

    python bench/ddp_train.py --batch 16 --out one.json
    accelerate launch --multi_gpu --num_processes 2 bench/ddp_train.py --batch 8 --out two.json   # on CPU too: --cpu starts one process

Dropout is off (unless --dropout) so that the per-rank dropout RNG cannot make the curves differ: what is left is arithmetic order.
"""
import argparse, json, os, sys, tempfile, time, warnings

warnings.filterwarnings("ignore")   # library notices on a CPU-only machine; the curve is what this script is for
from ft_course.setup import get_profile, setup_env
from ft_course.data import load_profile_data, tokenize
from ft_course.train import load_classifier, make_trainer, make_training_args

NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

def main(a):
    setup_env(offline=True)
    prof = get_profile("tiny")
    model, tok = load_classifier(prof, **({} if a.dropout else NO_DROPOUT))
    data = tokenize(load_profile_data(prof), tok, prof.max_length)
    args = make_training_args(tempfile.mkdtemp(prefix="ddp_train_"), prof, per_device_train_batch_size=a.batch, learning_rate=a.lr,
                              max_steps=a.steps, seed=a.seed, warmup_steps=0, logging_steps=1, eval_strategy="no", disable_tqdm=True)
    trainer = make_trainer(model, args, data, tok)
    t0 = time.perf_counter(); trainer.train(); took = time.perf_counter() - t0
    if trainer.accelerator.is_main_process:   # one writer: every rank holds the same (gathered) log
        losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
        fsdp_asked = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
        launch = "python" if trainer.accelerator.num_processes == 1 else (
            f"accelerate launch {'--use_fsdp --fsdp_version 2' if fsdp_asked else '--multi_gpu'} "
            f"--num_processes {trainer.accelerator.num_processes} --num_machines 1 "
            "--mixed_precision no --dynamo_backend no")
        res = dict(command=f"{launch} bench/ddp_train.py " + " ".join(sys.argv[1:]), losses=losses, world_size=trainer.accelerator.num_processes, per_device_batch=a.batch,
                   global_batch=a.batch * trainer.accelerator.num_processes * args.gradient_accumulation_steps,
                   lr=a.lr, steps=a.steps, seed=a.seed, dropout=a.dropout, train_seconds=round(took, 2),
                   fsdp_asked=fsdp_asked, distributed_type=str(trainer.accelerator.distributed_type),
                   model_class=type(trainer.model_wrapped).__name__)
        with open(a.out, "w") as f: json.dump(res, f, indent=1)

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16, help="per-device batch")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--seed", type=int, default=42, help="Trainer seed: data order and dropout masks (the model is built before it, under setup_env's seed)")
    p.add_argument("--dropout", action="store_true", help="keep the model's dropout (each rank draws its own masks)")
    p.add_argument("--out", required=True, help="JSON file for the loss curve")
    main(p.parse_args())
