"""cascade.study on the bundled model and sample text: the figures it returns, the files it writes
and resumes from, and Ctrl-C stopping it."""

import signal
import time

import numpy as np
import pytest
from conftest import DATA

import cascade

TEXT = DATA / "text" / "sample.txt"


def per_layer_column(result, key):
    return np.asarray(result["per_layer"][key])


def test_study_figures(stories):
    r = cascade.study(stories, TEXT, ctx=128, windows=2, seed=1, tau_sweep=[0.0, 0.5], quiet=True)
    assert r["windows"] == 2 and r["layers"] == 5
    assert r["params"]["ctx"] == 128 and r["params"]["tau_sweep"] == [0.0, 0.5]
    configs = r["configs"]
    assert list(configs)[0] == "full" and "cascade@tau=0" in configs and "cascade@tau=0.5" in configs
    c = configs["cascade"]
    assert c["tau"] == 0.3 and not c["sweep"]
    assert c["jaccard_vs_full"]["mean"] == 1.0  # the exact cascade
    assert 0 < c["gram_needed_savings"]["mean"] < 1 and c["r_over_T"]["n"] == 2
    assert configs["cascade@tau=0"]["r_over_T"]["mean"] > configs["cascade@tau=0.5"]["r_over_T"]["mean"]
    rows = len(configs) * 2 * 5
    assert len(per_layer_column(r, "r")) == rows and len(per_layer_column(r, "config")) == rows
    assert "files" not in r
    with pytest.raises(ValueError, match="continuation study"):
        cascade.plot_frontier(r)


def test_study_writes_and_resumes(stories, tmp_path):
    first = cascade.study(stories, TEXT, ctx=128, windows=1, out=tmp_path / "s", quiet=True)
    assert {"report.md", "metrics.json", "per_layer.csv"} <= {p.name for p in (tmp_path / "s").iterdir()}
    again = cascade.study(stories, TEXT, ctx=128, windows=1, out=tmp_path / "s", quiet=True)
    assert again["windows_resumed"] == 1
    assert again["configs"]["cascade"]["ppl_ratio"] == first["configs"]["cascade"]["ppl_ratio"]
    with pytest.raises(cascade.CascadeError):
        cascade.study(stories, TEXT, ctx=128, windows=1, tau=0.2, out=tmp_path / "s", quiet=True)


def test_study_errors(stories):
    with pytest.raises(cascade.CascadeError, match="tau"):
        cascade.study(stories, TEXT, ctx=128, tau=1.5, quiet=True)
    with pytest.raises(cascade.CascadeError, match="context"):
        cascade.study(stories, TEXT, ctx=100000, quiet=True)
    with pytest.raises(cascade.CascadeError, match="cannot open"):
        cascade.study(stories, DATA / "no-such.txt", ctx=128, quiet=True)


def test_ctrl_c_stops_a_study(stories):
    # A study of every window takes several seconds; a signal a moment in whose handler raises
    # KeyboardInterrupt (what Ctrl-C's SIGINT does) must end it early. An OS timer sends it, so its
    # arrival does not wait for a Python thread to be scheduled (a threading.Timer calling
    # _thread.interrupt_main once arrived only after the study had finished, in one CI run).
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    start = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(KeyboardInterrupt):
            cascade.study(stories, TEXT, ctx=64, tau_sweep=[0.1, 0.2, 0.4, 0.5], quiet=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - start < 3  # the whole study takes about 4.4 s on a 2-core machine


def plot_frontier_or_say_why(result, png):
    """plot_frontier draws one series per method with a point per budget (matplotlib installed), or
    says that it needs matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="needs matplotlib"):
            cascade.plot_frontier(result)
        return
    fig = cascade.plot_frontier(result, png)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    assert sorted(labels) == ["snapkv", "streaming"]
    assert all(len(h.lines[0].get_xdata()) == 2 for h in handles)  # a point per budget
    assert png.stat().st_size > 0


def test_study_continuation(stories, tmp_path):
    # SPEC 8 on two windows: two KV methods at two budgets against exact attention over the 31
    # next-token predictions inside each window's continuation.
    r = cascade.study(stories, TEXT, ctx=128, windows=2, seed=3, protocol="continuation", continuation=32,
                      methods=["snapkv", "streaming"], budgets=[0.25, 0.5], out=tmp_path / "c", quiet=True)
    assert r["params"]["protocol"] == "continuation" and r["params"]["continuation"] == 32
    assert r["params"]["methods"] == ["snapkv", "streaming"] and r["params"]["budgets"] == [0.25, 0.5]
    configs = r["configs"]
    assert list(configs) == ["snapkv@0.25", "snapkv@0.5", "streaming@0.25", "streaming@0.5"]
    for name, c in configs.items():
        assert c["method"] == name.split("@")[0] and c["budget"] == float(name.split("@")[1])
        assert c["kept_fraction"]["mean"] == c["budget"]  # round(F * 96) of the 96 context entries
        assert c["ppl_ratio"]["n"] == 2 and c["ppl_ratio"]["mean"] > 0 and 0 <= c["top1"]["mean"] <= 1
        assert c["kl"]["mean"] > 0
    assert len(per_layer_column(r, "kept_fraction")) == 4 * 2 * 5
    assert {"report.md", "frontier_kept.svg", "frontier_time.svg"} <= {p.name for p in (tmp_path / "c").iterdir()}
    plot_frontier_or_say_why(r, tmp_path / "frontier.png")
    with pytest.raises(cascade.CascadeError, match="unknown variant"):
        cascade.study(stories, TEXT, ctx=128, windows=1, protocol="continuation", continuation=32,
                      methods=["ada+bogus"], quiet=True)
    with pytest.raises(cascade.CascadeError, match="model was loaded on cpu"):
        cascade.study(stories, TEXT, ctx=128, windows=1, protocol="continuation", device="cuda", quiet=True)
