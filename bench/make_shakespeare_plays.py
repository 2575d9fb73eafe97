"""Build the course's own-data example: which of four Shakespeare plays a speech comes from.

Source: tiny-shakespeare (`shared/data/tinyshakespeare/input.txt`, from karpathy/char-rnn; Shakespeare's text is in the
public domain). The file is several plays one after another, as speeches ("SPEAKER:" then lines). A play's speeches are
the ones between its main characters' first and last speech; speeches of fewer than 4 words ("Ay.") are left out, and so
is every speech whose text occurs more than once (so no text is in both train and test).
Writes `ft_course/examples/shakespeare_plays/{train,test}.csv` (columns speech, play, speaker), test = 20%, stratified.

    python bench/make_shakespeare_plays.py
"""
import csv, random, sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ft_course.setup import data_dir

MAIN_CHARACTERS = {   # a play's span: from the first to the last speech of these characters
    "Coriolanus": ["CORIOLANUS", "MARCIUS", "MENENIUS", "SICINIUS", "BRUTUS", "COMINIUS", "VOLUMNIA", "AUFIDIUS"],
    "Romeo and Juliet": ["ROMEO", "BENVOLIO", "MERCUTIO", "FRIAR LAURENCE", "CAPULET", "LADY CAPULET", "Nurse"],
    "Measure for Measure": ["DUKE VINCENTIO", "ISABELLA", "ANGELO", "LUCIO", "ESCALUS", "Provost", "POMPEY"],
    "The Taming of the Shrew": ["PETRUCHIO", "KATHARINA", "TRANIO", "BAPTISTA", "HORTENSIO", "GRUMIO", "LUCENTIO", "GREMIO"],
}
MIN_WORDS, TEST_FRAC, SEED = 4, 0.2, 0

def speeches(text:str)->list[tuple[str, str]]:
    "(speaker, speech on one line) of every block 'SPEAKER:\\nlines' of the file"
    out = []
    for block in text.split("\n\n"):
        speaker, sep, body = block.strip().partition(":\n")
        if sep: out.append((speaker.strip(), " ".join(body.split())))
    return out

def label(rows:list[tuple[str, str]])->list[dict]:
    "The speeches inside each play's span, with the play as label"
    out = []
    for play, chars in MAIN_CHARACTERS.items():
        idx = [i for i, (s, _) in enumerate(rows) if s in chars]
        out += [dict(speech=t, play=play, speaker=s) for s, t in rows[min(idx):max(idx) + 1] if len(t.split()) >= MIN_WORDS]
    counts = Counter(r["speech"] for r in out)
    return [r for r in out if counts[r["speech"]] == 1]

def main():
    rows = label(speeches((data_dir(required=True)/"tinyshakespeare"/"input.txt").read_text()))
    rng, train, test = random.Random(SEED), [], []
    for play in MAIN_CHARACTERS:
        mine = [r for r in rows if r["play"] == play]; rng.shuffle(mine)
        k = round(TEST_FRAC * len(mine)); test += mine[:k]; train += mine[k:]
    rng.shuffle(train); rng.shuffle(test)
    out = ROOT/"ft_course"/"examples"/"shakespeare_plays"; out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", train), ("test", test)):
        with open(out/f"{name}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, ["speech", "play", "speaker"]); w.writeheader(); w.writerows(part)
    print({p: sum(r["play"] == p for r in rows) for p in MAIN_CHARACTERS}, f"train {len(train)}, test {len(test)}")

if __name__ == "__main__": main()
