"""Shared fixtures of the Python suite: the repository's paths and two loaded models.

One OpenMP thread unless the caller says otherwise: CI's machine has 2 cores shared with other work,
and OpenMP's spinning threads on an oversubscribed machine make these tiny models many times slower
(the results do not depend on the thread count). It must be set before cascade loads the runtime.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import cascade  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
STORIES = ROOT / "models" / "stories260K" / "stories260K.bin"


@pytest.fixture(scope="session")
def stories():
    return cascade.load(STORIES)


@pytest.fixture(scope="session")
def llama_gqa():
    return cascade.load(DATA / "models" / "llama_gqa")
