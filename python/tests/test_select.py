"""cascade.select against a plain NumPy statement of SPEC section 1, on random data with redundancy:
the same representatives and parents exactly, for both rules and both similarities, and the cascade
from a previous layer equal to selecting from scratch."""

import numpy as np
import pytest

import cascade

RHO_SLACK = 1e-10  # the engine's kRhoSlack: rho >= theta - slack counts as reaching theta


def reference(x, tau, rule, similarity):
    """SPEC 1: normalise, form the whole Gram, scan in token order."""
    z = x.astype(np.float64)
    if similarity == "pearson":
        z = z - z.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    z = np.divide(z, norm, out=np.zeros_like(z), where=norm > 0)
    gram = z @ z.T
    theta = 1.0 - tau * tau - RHO_SLACK
    reps, parents = [0], [0]
    for t in range(1, len(x)):
        rho = gram[t, reps]
        best = reps[int(np.argmax(rho))]  # argmax returns the first maximum: the smallest s
        top = rho.max() if rule == "greedy" else gram[t, :t].max()
        if top < theta:
            reps.append(t)
            parents.append(t)
        else:
            parents.append(best)
    return np.array(reps), np.array(parents)


def redundant(rng, T=160, d=24, clusters=12):
    """Tokens drawn around a few centres at several noise levels, with exact duplicates."""
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, T)] + rng.choice([0.02, 0.1, 0.4, 1.0], (T, 1)) * rng.standard_normal((T, d))
    x[rng.integers(1, T, 10)] = x[rng.integers(0, T, 10)]
    return x.astype(np.float32)


@pytest.mark.parametrize("rule", ["greedy", "all-earlier"])
@pytest.mark.parametrize("similarity", ["pearson", "cosine"])
@pytest.mark.parametrize("tau", [0.0, 0.1, 0.3, 0.5, 0.8])
def test_matches_numpy_reference(rule, similarity, tau):
    x = redundant(np.random.default_rng(int(tau * 10) + 100 * (rule == "greedy")))
    got = cascade.select(x, tau=tau, rule=rule, similarity=similarity)
    reps, parents = reference(x, tau, rule, similarity)
    assert got["reps"].dtype == np.int32 and got["parents"].dtype == np.int32
    np.testing.assert_array_equal(got["reps"], reps)
    np.testing.assert_array_equal(got["parents"], parents)
    T = len(x)
    assert got["gram_needed"] == T * (T - 1) // 2  # the full selection's causal Gram


@pytest.mark.parametrize("similarity", ["pearson", "cosine"])
def test_cascade_from_previous_equals_full(similarity):
    rng = np.random.default_rng(3)
    below = redundant(rng)
    above = below + 0.05 * rng.standard_normal(below.shape).astype(np.float32)
    prev = cascade.select(below, tau=0.4, similarity=similarity)
    scratch = cascade.select(above, tau=0.4, similarity=similarity)
    for previous in (prev, prev["reps"]):
        c = cascade.select(above, tau=0.4, previous=previous, similarity=similarity)
        np.testing.assert_array_equal(c["reps"], scratch["reps"])
        np.testing.assert_array_equal(c["parents"], scratch["parents"])
        np.testing.assert_array_equal(c["added"], np.setdiff1d(scratch["reps"], prev["reps"]))
        np.testing.assert_array_equal(c["removed"], np.setdiff1d(prev["reps"], scratch["reps"]))
        assert c["gram_needed"] < scratch["gram_needed"]
    inherited = cascade.select(above, tau=0.4, previous=prev, mode="inherit", similarity=similarity)
    np.testing.assert_array_equal(inherited["reps"], prev["reps"])


def test_errors():
    x = redundant(np.random.default_rng(0))
    with pytest.raises(cascade.CascadeError, match="tau"):
        cascade.select(x, tau=1.5)
    with pytest.raises(cascade.CascadeError):
        cascade.select(x, rule="sometimes")
    with pytest.raises(cascade.CascadeError):
        cascade.select(x[0])  # not 2-D
    with pytest.raises(cascade.CascadeError):
        cascade.select(x, previous=cascade.select(x[:50]))  # another length
    with pytest.raises(cascade.CascadeError):
        cascade.select(x, previous=cascade.select(x), rule="all-earlier")  # the cascade is greedy


def test_torch_tensors():
    torch = pytest.importorskip("torch")
    x = redundant(np.random.default_rng(5))
    want = cascade.select(x, tau=0.3)
    for t in (torch.from_numpy(x), torch.from_numpy(x).requires_grad_(), torch.from_numpy(x).double()):
        got = cascade.select(t, tau=0.3)
        np.testing.assert_array_equal(got["reps"], want["reps"])
        np.testing.assert_array_equal(got["parents"], want["parents"])
