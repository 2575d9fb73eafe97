"Numbers in prose against the stored runs they come from (docs/claims.py): a rerun or an edit that moves one fails here"
import importlib.util, json, re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("ft_docs_claims", ROOT/"docs"/"claims.py")
claims = importlib.util.module_from_spec(spec); spec.loader.exec_module(claims)


def test_prose_matches_the_stored_runs():
    errors = claims.check()
    assert not errors, "\n".join(errors[:20]) + "\n-> rerun the source, or `python docs/claims.py --write` after a rerun"


def test_every_claim_is_used_and_the_readme_keeps_them():
    texts = claims.prose()
    unused = set(claims.CLAIMS) - claims.used(texts)
    assert not unused, f"claims no prose uses: {sorted(unused)} (remove them from docs/claims.py)"
    readme = (ROOT/"README.md").read_text()
    index = texts["nbs/index.ipynb"]
    assert [m["key"] for m in claims.MARK.finditer(index)] == [m["key"] for m in claims.MARK.finditer(readme)][:len(claims.MARK.findall(index))]


def test_a_planted_mismatch_fails():
    "The check can fail: change one marked number in a real notebook's prose and it names the file, claim and both values"
    texts = claims.prose()
    name, text = next((n, t) for n, t in texts.items() if claims.MARK.search(t))
    m = claims.MARK.search(text)
    got = m["text"].strip(claims.TRIM)
    planted = re.sub(r"\d", lambda d: str((int(d[0]) + 1) % 10), got, count=1)
    bad = text[:m.start()] + m["text"].replace(got, planted) + m["mark"] + text[m.end():]
    errors = claims.check({name: bad})
    assert len(errors) == 1 and name in errors[0] and m["key"] in errors[0] and repr(planted) in errors[0], errors
    assert claims.check({name: text}) == []


def test_unknown_claim_and_missing_source_are_errors():
    assert "no claim named 'nope'" in claims.check({"x": "12.3%<!--claim:nope-->"})[0]
    def missing(): raise LookupError("bench/results/none.csv: 0 rows match {}")
    assert "0 rows match" in claims.check({"x": "1.0%<!--claim:k-->"}, claims={"k": missing})[0]


@pytest.mark.parametrize("text, want", [("**78.7%**<!--claim:k-->", "78.7%"), ("(14.5×<!--claim:k-->)", "14.5×"),
                                        ("| 1.52<!--claim:k--> GB |", "1.52")])
def test_marker_reads_the_number_in_front_of_it(text, want):
    assert claims.check({"x": text}, claims={"k": lambda: want}) == []
    assert claims.check({"x": text}, claims={"k": lambda: "0.0"}) != []


def test_markers_do_not_show_on_the_site():
    "Jupyter and MyST keep an HTML comment out of the page; the built site must not show a marker as text"
    site = ROOT/"docs"/"_build"/"html"
    pages = list(site.glob("*.html"))
    if not pages: pytest.skip("the website is not built (python docs/build.py)")
    shown = [p.name for p in pages if "&lt;!--claim:" in p.read_text()]
    assert not shown, f"markers shown as text on {shown}"


def test_unmarked_lists_numbers_without_a_marker():
    got = claims.unmarked({"x.md": "took 12.5 s and 3 GB, then 80%<!--claim:a--> marked, and 1,200 ms"})["x.md"]
    assert len(got) == 3 and "12.5 s" in got[0] and "3 GB" in got[1] and "1,200 ms" in got[2]   # the marked 80% is not listed
