# Tests of the Python module `rill` (python/): training with callbacks, the parallel forward
# against the recurrent step, streams (save and load, fork, feed, sampling callbacks), and the
# Python exceptions that bad inputs raise. The fixtures (conftest.py) train tiny models.
import json
import os
import signal
import threading

import numpy as np
import pytest

import rill
from conftest import tiny_config

TOL = 1e-4  # f32: the parallel and recurrent forms agree to rounding


# ---- training -------------------------------------------------------------------------------
def test_train_calls_on_step_every_step(trained):
    events, result = trained["events"], trained["result"]
    steps = trained["config"]["steps"]
    assert [e["step"] for e in events] == list(range(1, steps + 1))
    for e in events:
        assert np.isfinite(e["loss"]) and e["loss"] > 0
        assert e["lr"] > 0 and e["elapsed_s"] >= 0 and e["unit"] == "tokens"
    # It learned something: the pattern corpus is easy.
    assert np.mean([e["loss"] for e in events[-10:]]) < np.mean([e["loss"] for e in events[:5]])
    assert result["steps"] == steps
    assert not result["interrupted"]
    assert "bits/byte" in result["valid"] and result["valid_loss"] > 0
    assert os.path.isfile(result["checkpoint"])
    assert result["checkpoint"] == trained["checkpoint"]


def test_train_stops_when_on_step_returns_false_and_resumes(data_dir, tmp_path):
    config = tiny_config(data_dir, tmp_path / "run", steps=12)
    seen = []

    def on_step(e):
        seen.append(e["step"])
        return e["step"] < 5  # False at step 5

    result = rill.train(config, on_step=on_step)
    assert seen == [1, 2, 3, 4, 5]
    assert result["steps"] == 5 and result["interrupted"]
    assert rill.load(result["checkpoint"]).info["step"] == 5
    # The saved run goes on to its end.
    rest = []
    result = rill.train(config, resume=True, on_step=lambda e: rest.append(e["step"]))
    assert rest == list(range(6, 13)) and result["steps"] == 12 and not result["interrupted"]


def test_train_exception_in_callback_stops_and_is_raised(data_dir, tmp_path):
    config = tiny_config(data_dir, tmp_path / "run", steps=12)

    def on_step(e):
        if e["step"] == 3:
            raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        rill.train(config, on_step=on_step)
    # The trainer saved before it stopped.
    assert rill.load(str(tmp_path / "run" / "checkpoint.safetensors")).info["step"] == 3


def test_train_ctrl_c_saves_and_raises_keyboard_interrupt(data_dir, tmp_path):
    config = tiny_config(data_dir, tmp_path / "run", steps=5000)  # far longer than the timer
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            rill.train(config)  # no Python callback: the trainer itself polls for Ctrl-C
    finally:
        timer.cancel()
    step = rill.load(str(tmp_path / "run" / "checkpoint.safetensors")).info["step"]
    assert 0 < step < 5000


def test_train_overrides_and_messages(data_dir, tmp_path):
    lines = []
    config = tiny_config(data_dir, tmp_path / "ignored", steps=12)  # warm-up 6
    result = rill.train(config, out_dir=tmp_path / "o", steps=8, on_message=lines.append)
    assert result["steps"] == 8 and result["out_dir"] == str(tmp_path / "o")
    assert os.path.isfile(tmp_path / "o" / "checkpoint.safetensors")
    assert not os.path.exists(tmp_path / "ignored")
    assert any("valid loss" in line for line in lines)


def test_train_config_from_file(data_dir, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tiny_config(data_dir, tmp_path / "run", steps=6)))
    assert rill.train(str(path))["steps"] == 6
    # Paths may be str or os.PathLike throughout.
    assert rill.train(path, out_dir=tmp_path / "again")["steps"] == 6
    model = rill.load(tmp_path / "again" / "checkpoint.safetensors", data_dir=data_dir)
    model.stream("one").save(tmp_path / "s.safetensors")
    assert model.load_stream(tmp_path / "s.safetensors").tokens == 3


# ---- the model ------------------------------------------------------------------------------
def test_info(model, trained):
    info = model.info
    assert info["vocab"] == 256 and info["out_dim"] == 256 and info["in_features"] == 0
    assert info["parameters"] > 0 and info["state_bytes"] > 0 and info["constant_state"]
    assert info["trained_context"] == 64 and info["context"] == 64
    assert info["step"] == trained["config"]["steps"]
    assert info["model"]["d_model"] == 32 and info["task"]["corpus"] == "pattern"
    assert info["run"]["batch"] == 8 and len(info["weights_sha256"]) == 64
    info["vocab"] = 0  # a copy
    assert model.info["vocab"] == 256


def test_encode_decode(model):
    text = "one then two.\nhéllo ✓"
    ids = model.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert model.decode(ids) == text
    assert model.decode(np.array(ids)) == text
    assert model.decode([0xE2, 0x9C]) == "\ufffd"  # an unfinished character


def test_forward_equals_stepping_token_by_token(model):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3, 50), dtype=np.int64)
    parallel = model.forward(x)
    assert parallel.dtype == np.float32 and parallel.shape == (3, 50, 256)
    state = model.initial_state(3)
    stepped = np.stack([model.step(x[:, t], state) for t in range(x.shape[1])], axis=1)
    assert np.max(np.abs(parallel - stepped)) < TOL * max(1.0, np.max(np.abs(parallel)))


def test_forward_with_state_continues(model):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(2, 40), dtype=np.int64)
    whole = model.forward(x)
    state = model.initial_state(2)
    first = model.forward(x[:, :17], state)
    second = model.forward(x[:, 17:], state)  # a non-contiguous view: copied
    assert np.allclose(np.concatenate([first, second], axis=1), whole, atol=TOL)
    assert state.batch == 2 and state.bytes > 0
    # A clone is independent.
    copy = state.clone()
    a = model.step(x[:, 0], state)
    b = model.step(x[:, 0], copy)
    assert np.array_equal(a, b)


def test_forward_output_owns_its_memory(model):
    x = np.zeros((1, 4), dtype=np.int64)
    out = model.forward(x)
    again = model.forward(x)
    out[...] = 0  # writable, and shared with nothing else
    assert np.any(again != 0)


def test_forward_from_threads(model):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(2, 64), dtype=np.int64)
    want = model.forward(x)
    got = [None] * 4

    def run(i):
        got[i] = model.forward(x)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g in got:
        assert np.array_equal(g, want)


def test_bf16_weights(trained):
    m = rill.load(trained["checkpoint"], weights="bf16")
    assert m.info["weights"] == "bf16"
    ids = m.encode("one then two.\ntwo then")
    last = m.forward(np.array([ids]))[0, -1]
    assert np.allclose(m.stream(ids).next_logits(), last, atol=1e-3)


# ---- streams --------------------------------------------------------------------------------
def test_next_logits_equal_the_parallel_forward(model):
    ids = model.encode("three then four.\nfour then")  # shorter than the trained context
    s = model.stream(ids)
    last = model.forward(np.array([ids]))[0, -1]
    logits = s.next_logits()
    assert logits.shape == (256,) and logits.dtype == np.float32
    assert np.allclose(logits, last, atol=TOL)
    assert np.array_equal(s.next_logits(), logits)  # the stream did not move


def test_generate_text_and_callback(model):
    s = model.stream("one then", seed=5)
    assert s.tokens == 8
    pieces = []
    text = s.generate(40, temperature=0.8, on_text=pieces.append)
    assert "".join(pieces) == text and len(text) > 0
    assert s.tokens == 48
    # The same prompt and seed give the same text, with or without a callback.
    assert model.stream("one then", seed=5).generate(40, temperature=0.8) == text


def test_generate_stops_when_on_text_returns_false(model):
    s = model.stream("one then", seed=1)
    pieces = []
    text = s.generate(50, temperature=0, on_text=lambda p: pieces.append(p) or False)
    assert len(pieces) == 1 and text == pieces[0]
    assert s.tokens == 9


def test_generate_exception_in_on_text_is_raised(model):
    s = model.stream("one then", seed=1)

    def on_text(piece):
        raise ValueError("enough")

    with pytest.raises(ValueError, match="enough"):
        s.generate(50, temperature=0, on_text=on_text)
    assert s.tokens == 9  # the token sampled before the exception stays
    assert len(s.generate(5)) > 0  # and the stream goes on


def test_callback_using_its_own_model_is_refused(model):
    s = model.stream("one then", seed=1)
    with pytest.raises(RuntimeError, match="callback"):
        s.generate(5, on_text=lambda piece: s.next_logits())  # would deadlock
    assert len(s.generate(5, temperature=0)) > 0


def test_saved_stream_continues_identically(model, tmp_path):
    s = model.stream("two then three.\nthree", seed=7)
    s.generate(30)
    path = str(tmp_path / "stream.safetensors")
    s.save(path)
    after_save = s.generate(100)  # past the trained context: rebuilds happen
    assert s.rebuilds > 0
    t = model.load_stream(path)
    assert t.tokens == 21 + 30 and t.state_bytes == s.state_bytes
    assert t.generate(100) == after_save


def test_fork_continues_identically_then_independently(model):
    s = model.stream("five then", seed=11)
    s.generate(10)
    f = s.fork()
    assert f.tokens == s.tokens
    assert f.generate(80) == s.generate(80)
    before = s.next_logits()
    f.feed("seven then one.\n")
    f.generate(20)
    assert np.array_equal(s.next_logits(), before)  # the fork did not touch its parent
    assert not np.array_equal(f.next_logits(), before)


def test_feed_in_pieces_equals_feed_at_once(model):
    a = "one then two.\ntwo then three.\nthree then four.\n"
    b = "four then five.\nfive then six.\nsix then seven.\nseven then one.\none then"
    assert len(a) + len(b) > 64  # crosses the trained context: the state is rebuilt
    split = model.stream("x")
    split.feed(a)
    split.feed(model.encode(b))
    whole = model.stream("x")
    whole.feed(a + b)
    start = model.stream("x" + a + b)
    assert split.tokens == whole.tokens == start.tokens == 1 + len(a) + len(b)
    assert split.rebuilds == whole.rebuilds == start.rebuilds > 0
    assert np.allclose(split.next_logits(), whole.next_logits(), atol=TOL)
    assert np.allclose(start.next_logits(), whole.next_logits(), atol=TOL)
    greedy = whole.generate(60, temperature=0)
    assert split.generate(60, temperature=0) == greedy
    assert start.generate(60, temperature=0) == greedy


def test_generate_ids(model):
    s = model.stream([ord("o"), ord("n")], seed=3)
    ids = s.generate_ids(20, top_k=5, top_p=0.9)
    assert len(ids) == 20 and all(0 <= i < 256 for i in ids)
    assert model.stream("on", seed=3).generate(20, top_k=5, top_p=0.9) == model.decode(ids)


# ---- errors ---------------------------------------------------------------------------------
def test_error_is_a_runtime_error():
    assert issubclass(rill.Error, RuntimeError)


def test_forward_wrong_dtype(model):
    with pytest.raises(TypeError, match="int64 token ids.*int32"):
        model.forward(np.zeros((1, 3), dtype=np.int32))
    with pytest.raises(TypeError, match="float64"):
        model.forward(np.zeros((1, 3)))
    with pytest.raises(TypeError, match="NumPy array"):
        model.forward([[1, 2, 3]])


def test_forward_wrong_shape(model):
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        model.forward(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="positive"):
        model.forward(np.zeros((1, 0), dtype=np.int64))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        model.step(np.zeros((2, 3), dtype=np.int64), model.initial_state(2))
    with pytest.raises(ValueError, match="holds 2 sequences"):
        model.step(np.zeros(3, dtype=np.int64), model.initial_state(2))


def test_out_of_vocabulary_ids(model):
    with pytest.raises(ValueError, match="token id 256 .* vocabulary"):
        model.forward(np.array([[1, 256]], dtype=np.int64))
    with pytest.raises(ValueError, match="token id -1"):
        model.stream([5, -1])
    s = model.stream("one")
    with pytest.raises(ValueError, match="token id 300"):
        s.feed([300])
    with pytest.raises(TypeError, match="str"):
        s.feed(3.5)


def test_bad_sampling_arguments(model):
    s = model.stream("one")
    with pytest.raises(ValueError, match="top_p"):
        s.generate(5, top_p=0)
    with pytest.raises(ValueError, match="temperature"):
        s.generate(5, temperature=-1)
    with pytest.raises(ValueError, match="positive"):
        s.generate(-1)
    assert s.generate(0) == "" and s.tokens == 3
    with pytest.raises(ValueError, match="empty"):
        model.stream("")


def test_missing_and_bad_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        rill.load(str(tmp_path / "missing.safetensors"))
    assert e.value.filename == str(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(rill.Error):
        rill.load(str(junk))


def test_state_of_another_model_is_refused(model, other_checkpoint, tmp_path):
    other = rill.load(other_checkpoint)
    path = str(tmp_path / "other.safetensors")
    other.stream("one then").save(path)
    with pytest.raises(rill.Error, match="another model"):
        model.load_stream(path)
    assert other.load_stream(path).tokens == 8
    with pytest.raises(ValueError, match="another model"):
        model.forward(np.zeros((1, 2), dtype=np.int64), other.initial_state(1))
    with pytest.raises(FileNotFoundError):
        model.load_stream(str(tmp_path / "missing.safetensors"))
    with pytest.raises(rill.Error):  # a checkpoint is not a stream
        model.load_stream(other_checkpoint)


def test_bad_training_config(data_dir, tmp_path):
    with pytest.raises(rill.Error, match="steps"):
        rill.train(tiny_config(data_dir, tmp_path / "run", steps=0))
    with pytest.raises(rill.Error, match="nonsense"):
        rill.train({**tiny_config(data_dir, tmp_path / "run"), "nonsense": 1})
    with pytest.raises(rill.Error, match="warmup"):  # an override is checked too
        rill.train(tiny_config(data_dir, tmp_path / "run"), steps=10)
    with pytest.raises(FileNotFoundError):
        rill.train(str(tmp_path / "missing.json"))
    with pytest.raises(TypeError):
        rill.train(42)
