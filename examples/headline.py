"""The headline figure of RESULTS.md from Python: the ADA study's tau sweep on the bundled stories260K
model -- how many tokens a layer keeps (r/T), how stable the sets are from one layer to the next
(Jaccard), what the exact cascade saves in Gram inner products, and what ADA costs in perplexity.

    pip install .            # from the repository root; matplotlib optional, for the plot
    python3 examples/headline.py [PLOT.png]   # default out/headline.png

Here on tests/data/text/sample.txt at T = 256, so that it runs anywhere in seconds; the committed runs
in results/ use WikiText-2 (../shared/data/wikitext-2-raw/wiki.test.raw with windows=64, seed=0).
"""

import sys
from pathlib import Path

import cascade

ROOT = Path(__file__).resolve().parents[1]
TAUS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]

model = cascade.load(ROOT / "models" / "stories260K" / "stories260K.bin")
result = cascade.study(model, ROOT / "tests" / "data" / "text" / "sample.txt", ctx=256, tau_sweep=TAUS)
keys = ["r_over_T", "jaccard_consecutive", "gram_needed_savings", "gram_computed_savings", "ppl_ratio"]
rows = {k: [result["configs"][f"cascade@tau={tau:g}"][k]["mean"] for tau in TAUS] for k in keys}

print(f"{result['windows']} windows of 256 tokens; mean over windows")
print(f"{'tau':>5} {'r/T':>7} {'J(S_l,S_l+1)':>13} {'Gram saved (needed)':>20} {'(computed)':>11} {'ppl ratio':>10}")
for i, tau in enumerate(TAUS):
    print(f"{tau:5.2f} {rows['r_over_T'][i]:7.3f} {rows['jaccard_consecutive'][i]:13.4f} "
          f"{rows['gram_needed_savings'][i]:20.1%} {rows['gram_computed_savings'][i]:11.1%} {rows['ppl_ratio'][i]:10.3f}")


def plot(out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(TAUS, rows["r_over_T"], "o-", label="r / T")
    left.plot(TAUS, rows["jaccard_consecutive"], "s-", label="Jaccard(S_l, S_l+1)")
    left.plot(TAUS, rows["gram_needed_savings"], "^-", label="Gram savings, needed")
    left.plot(TAUS, rows["gram_computed_savings"], "v-", label="Gram savings, computed")
    left.set(xlabel="tau", title="selection (exact cascade)", ylim=(0, 1.05))
    left.legend(loc="center", bbox_to_anchor=(0.5, 0.66), fontsize="small")
    right.plot(TAUS, rows["ppl_ratio"], "o-", color="C3")
    right.set(xlabel="tau", ylabel="ppl_ada / ppl_exact", title="quality")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


try:
    plot(sys.argv[1] if len(sys.argv) > 1 else "out/headline.png")
except ImportError:
    print("matplotlib is not installed: no plot")
