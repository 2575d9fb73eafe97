"""Scale-out on CPU (notebook 10d): the course's training code, unchanged, under `accelerate launch` with 2 processes
(DDP over gloo) follows the same loss curve as one process with the same global batch, and does not follow a run with
another global batch (the negative control: the comparison can fail)."""
import json, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT/"bench"/"ddp_train.py"
TOL = 1e-5   # dropout is off, so only the order of the fp32 sums differs (measured: under 1e-6); the control differs by >1e-2
# `accelerate launch --cpu --num_processes 2` starts ONE process (accelerate 1.15's CPU launcher is for mpirun); without
# a GPU, `--multi_gpu` starts 2 processes with torchrun and `use_cpu=True` (the tiny profile) makes them MULTI_CPU (gloo)
LAUNCH = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29633"]
ENV = {"FT_PROFILE": "tiny", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "PYTHONWARNINGS": "ignore", "TOKENIZERS_PARALLELISM": "false"}

def _start(tmp, name, batch, launch=(), steps=6):
    out = tmp/f"{name}.json"
    p = subprocess.Popen([sys.executable, *launch, str(SCRIPT), "--batch", str(batch), "--steps", str(steps), "--out", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ | ENV, cwd=ROOT)
    return p, out

def _finish(p, out):
    err = p.communicate(timeout=300)[1]
    assert p.returncode == 0, err[-3000:]
    return json.loads(out.read_text())

@pytest.fixture(scope="module")
def curves(tmp_path_factory):
    "The two single-process runs side by side (one thread each on 2 cores), then the 2-process run alone"
    tmp = tmp_path_factory.mktemp("scale")
    one, control = _start(tmp, "one", 16), _start(tmp, "control", 8)
    one, control = _finish(*one), _finish(*control)
    return dict(two=_finish(*_start(tmp, "two", 8, LAUNCH)), one=one, control=control)

def test_two_processes_really_ran(curves):
    assert curves["two"]["world_size"] == 2 and curves["two"]["distributed_type"].endswith("MULTI_CPU")
    assert curves["two"]["global_batch"] == curves["one"]["global_batch"] == 16

def test_ddp_matches_one_process(curves):
    a, b = curves["two"]["losses"], curves["one"]["losses"]
    assert len(a) == len(b) == 6
    assert max(abs(x - y) for x, y in zip(a, b)) < TOL, (a, b)

def test_negative_control_does_not_match(curves):
    "Global batch 8 instead of 16: same seed, same data order, other updates; the test above could have failed"
    a, c = curves["two"]["losses"], curves["control"]["losses"]
    assert max(abs(x - y) for x, y in zip(a, c)) > 100 * TOL, (a, c)
