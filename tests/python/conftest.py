# Fixtures for the tests of the Python module: a small learnable corpus and tiny language models
# trained on it by rill.train itself, once per test session (a few seconds in all).
# Run with the module on the path: PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python
import os

import pytest

try:
    import rill
except ImportError as e:  # pragma: no cover - a hint for a wrong PYTHONPATH
    raise ImportError(
        f"{e}: build the module (target rill_py) and put its folder, e.g. build/python, "
        "on PYTHONPATH") from e

WORDS = ["one", "two", "three", "four", "five", "six", "seven"]


def pattern_text(sentences=3000):
    """Counting sentences ("one then two.\\ntwo then three.\\n..."): learnable from a few bytes."""
    return "".join(f"{WORDS[i % 7]} then {WORDS[(i + 1) % 7]}.\n" for i in range(sentences))


def tiny_config(data_dir, out_dir, steps=300, seed=1):
    """A tiny byte-level language model on the pattern corpus: 2 layers of width 32, linear
    attention, segments of 32 bytes with the state reset every 2 (trained context 64). 300 steps
    take about a second here and learn the words."""
    return {
        "task": {"type": "language_modeling", "corpus": "pattern", "seq": 32, "reset_every": 2},
        "model": {"d_model": 32, "n_layers": 2, "mlp_hidden": 64,
                  "mixers": [{"type": "linear_attention", "heads": 2, "chunk": 8}]},
        "data_dir": str(data_dir),
        "out_dir": str(out_dir),
        "batch": 8,
        "steps": steps,
        "warmup": min(20, steps // 2),
        "lr": 1e-2,
        "min_lr": 1e-3,
        "eval_every": 100,
        "eval_batches": 2,
        "checkpoint_every": 1000,
        "seed": seed,
    }


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    rill.prepare_corpus("pattern", pattern_text(), data_dir=str(d))
    return d


@pytest.fixture(scope="session")
def trained(data_dir, tmp_path_factory):
    """The main tiny run: its config, result, and every on_step event it reported."""
    out = tmp_path_factory.mktemp("run")
    config = tiny_config(data_dir, out)
    events = []
    result = rill.train(config, on_step=events.append)
    return {"config": config, "result": result, "events": events,
            "checkpoint": os.path.join(out, "checkpoint.safetensors")}


@pytest.fixture(scope="session")
def model(trained):
    return rill.load(trained["checkpoint"])


@pytest.fixture(scope="session")
def other_checkpoint(data_dir, tmp_path_factory):
    """Another model of the same shape (another seed, a few steps): other weights."""
    out = tmp_path_factory.mktemp("other")
    result = rill.train(tiny_config(data_dir, out, steps=10, seed=2))
    return result["checkpoint"]
