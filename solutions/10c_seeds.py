"""Solutions to the exercises of `10c_seeds.ipynb` (numpy and the stored cpu run; seconds, no training).

Each `exercise_N` returns the numbers that answer the exercise; `tests/test_solutions.py` checks them."""
from pathlib import Path
import numpy as np
import pandas as pd
from ft_course.seeds import best_rates, mean_sd, separated

STORED = Path(__file__).resolve().parents[1]/"bench"/"results"/"compare_seeds_cpu"/"seeds.csv"

def inflation(n_configs:int, n_dev:int, true_acc:float=0.80, trials:int=20_000, seed:int=0)->float:
    "Mean of (best of `n_configs` equally good scores on `n_dev` rows) minus the true accuracy: the winner's curse"
    rng = np.random.default_rng(seed)
    return float((rng.binomial(n_dev, true_acc, size=(trials, n_configs)) / n_dev).max(axis=1).mean() - true_acc)

def exercise_1()->dict:
    """The winner's curse with 15 or 3 configurations, on 872 or 200 dev rows: {(configs, rows): inflation in points}.

    The inflation is the expected maximum of `n_configs` noisy scores, about sd * E[max of n standard normals]: it
    grows slowly with the number of candidates (0.85 sd for 3, 1.74 sd for 15) and like 1/sqrt(rows) as the dev set
    shrinks (sd = sqrt(0.8 * 0.2 / rows): 1.35 points on 872 rows, 2.83 on 200). A small dev set matters more than a
    few more candidates: 3 configurations on 200 rows inflate as much as 15 on 872."""
    return {(k, n): round(100 * inflation(k, n), 2) for k in (15, 3) for n in (872, 200)}

def exercise_2(path=STORED, a:str="lora", b:str="full")->dict:
    """Per-seed differences a - b from the stored seeds, against the two unpaired `mean±sd` values.

    A seed fixes the data order and the dev set is the same for every run, so part of the seed-to-seed movement is
    shared by both methods; the paired difference removes that shared part, and its sd is smaller when the methods
    move together. With three seeds either view is rough: the claim still needs the gap to exceed the spread."""
    runs = pd.read_csv(path)
    wide = runs.pivot(index="seed", columns="method", values="accuracy")
    diff = 100 * (wide[a] - wide[b])
    return dict(diff_by_seed=diff.round(2).to_dict(), paired=mean_sd(diff, nd=2, unit=" points"),
                unpaired={m: mean_sd(wide[m], 100, 1, "%") for m in (a, b)}, separated=separated(wide[a], wide[b]),
                paired_sd=float(diff.std(ddof=1)), unpaired_sd_sum=float(100 * (wide[a].std(ddof=1) + wide[b].std(ddof=1))))

def exercise_3()->dict:
    """A selection table with a tie at 1e-3 and 3e-4: `best_rates` picks 3e-4.

    On a small selection split two rates within noise of each other are a tie in all but name; the smaller rate moves
    the pretrained weights less, diverges less often on a new seed, and is the cheaper mistake if the tie was luck."""
    toy = pd.DataFrame(dict(method=["lora"] * 3, learning_rate=[1e-3, 3e-4, 3e-3], selection_accuracy=[0.81, 0.81, 0.74]))
    return best_rates(toy)
