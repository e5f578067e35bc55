// rill.Stream: one sequence generated token by token with the recurrent step (train/generate.h):
// start from a prompt, feed more tokens, sample, look at the next token's logits, fork, save and
// load. Model.stream and Model.load_stream make them. The library calls run with the GIL released
// and the model's mutex held (bindings.h); the on_text callback takes the GIL back per token.
#include "python/bindings.h"

namespace rill::python {

namespace {

// Beside the library's own (generate.cpp): which checkpoint a saved stream continues, and how
// many tokens it had read.
constexpr const char* kCheckpoint = "checkpoint";
constexpr const char* kWeightsSha = "checkpoint_weights_sha256";
constexpr const char* kTokens = "tokens";

PyStream start(const std::shared_ptr<ModelHandle>& h, py::object prompt, uint64_t seed) {
  const std::vector<int64_t> ids = h->ids_of(prompt, "stream()");
  if (ids.empty()) throw py::value_error("stream(): the prompt is empty: give at least one token");
  PyStream s{h, {}, int64_t(ids.size())};
  const Computing computing(*h);
  s.stream = start_stream(h->model(), ids, seed, h->policy);
  return s;
}

void feed(PyStream& s, py::object text_or_ids) {
  const std::vector<int64_t> ids = s.handle->ids_of(text_or_ids, "feed()");
  {
    const Computing computing(*s.handle);
    extend_stream(s.handle->model(), s.stream, ids, s.handle->policy);
  }
  if (s.tokens >= 0) s.tokens += int64_t(ids.size());
}

SamplerOptions sampler(double temperature, int64_t top_k, double top_p) {
  if (!(temperature >= 0)) throw py::value_error("temperature must be 0 (greedy) or positive");
  if (top_k < 0) throw py::value_error("top_k must be 0 (no cut) or positive");
  if (!(top_p > 0 && top_p <= 1)) throw py::value_error("top_p must be in (0, 1]");
  return {temperature, top_k, top_p};
}

// Samples n tokens; on_token (called with the GIL released) sees each one and may throw
// CallbackErrors::Stop to end early. Returns the tokens sampled, however it ended; an error of
// the library is thrown after the stream's token count is brought up to date.
std::vector<int64_t> sample_tokens(PyStream& s, int64_t n, const SamplerOptions& opt,
                                   const std::function<void(int64_t)>& on_token) {
  if (n < 0) throw py::value_error("the number of tokens to generate must be 0 or positive");
  std::vector<int64_t> out;
  if (n == 0) return out;
  ModelHandle& h = *s.handle;
  std::exception_ptr error;
  {
    const Computing computing(h);
    try {
      continue_stream(
          h.model(), s.stream, n, opt, h.policy,
          [&](int64_t id) {
            out.push_back(id);
            if (on_token) on_token(id);
          },
          &h.step_path());
    } catch (const CallbackErrors::Stop&) {
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (s.tokens >= 0) s.tokens += int64_t(out.size());
  if (error) std::rethrow_exception(error);
  return out;
}

py::str generate(PyStream& s, int64_t n, double temperature, int64_t top_k, double top_p,
                 py::object on_text) {
  const SamplerOptions opt = sampler(temperature, top_k, top_p);
  const data::Tokenizer& tok = s.handle->tokens();
  int32_t prev = int32_t(s.stream.pending);
  std::string bytes;  // of the new tokens, when no callback decodes them as they come
  std::function<void(int64_t)> on_token = [&](int64_t id) {
    bytes += tok.decode_token(int32_t(id), prev);
    prev = int32_t(id);
  };
  if (on_text.is_none()) {
    sample_tokens(s, n, opt, on_token);
    return utf8_text(bytes);
  }
  // An incremental decoder, so that a character split over tokens reaches on_text whole.
  py::object decoder =
      py::module_::import("codecs").attr("getincrementaldecoder")("utf-8")("replace");
  py::list pieces;
  CallbackErrors errors;
  auto give = [&](const std::string& piece, bool final) {
    py::str text = decoder.attr("decode")(py::bytes(piece), final);
    if (py::len(text) == 0) return true;
    pieces.append(text);
    py::object r = on_text(text);
    return !(r.is(py::bool_(false)));
  };
  on_token = [&](int64_t id) {
    const std::string piece = tok.decode_token(int32_t(id), prev);
    prev = int32_t(id);
    py::gil_scoped_acquire gil;
    bool go_on = false;
    try {
      go_on = give(piece, false);
    } catch (...) {
      errors.keep();
    }
    if (!go_on) throw CallbackErrors::Stop();
  };
  sample_tokens(s, n, opt, on_token);
  errors.rethrow_if_kept();
  give("", true);  // bytes left of an unfinished character, as U+FFFD
  return py::str("").attr("join")(pieces);
}

py::array next_logits(PyStream& s) {
  ModelHandle& h = *s.handle;
  Tensor logits;
  {
    const Computing computing(h);
    NoGradGuard no_grad;
    // What continue_stream does before it samples, on a copy: prepare_step (the policy's
    // rebuild, generate.h), then the pending token through the step path.
    Stream copy = s.stream;
    copy.state = s.stream.state.clone();
    prepare_step(h.model(), copy, h.policy);
    State& state = copy.state;
    const Tensor id = Tensor::from_vector<int64_t>({s.stream.pending}, {1});
    logits = h.step_path().step(id, state).select(0, 0).clone();
  }
  return numpy_from_tensor(logits);
}

PyStream fork(PyStream& s) {
  const Computing computing(*s.handle);
  PyStream f = s;
  f.stream.state = s.stream.state.clone();
  return f;
}

void save(PyStream& s, const Path& path) {
  ModelHandle& h = *s.handle;
  std::map<std::string, std::string> meta = {{kCheckpoint, h.checkpoint},
                                             {kWeightsSha, h.loaded.info.weights_sha256}};
  if (s.tokens >= 0) meta[kTokens] = std::to_string(s.tokens);
  const Computing computing(h);
  s.stream.save(path.string(), meta);
}

PyStream load_stream(const std::shared_ptr<ModelHandle>& h, const Path& file) {
  const std::string path = file.string();
  require_file(path, "stream state");
  std::map<std::string, std::string> meta;
  PyStream s{h, {}, -1};
  {
    py::gil_scoped_release no_gil;
    s.stream = Stream::load(path, &meta);
  }
  auto it = meta.find(kWeightsSha);
  if (it == meta.end() || it->second != h->loaded.info.weights_sha256)
    throw Error(fmt::format(
        "[generate] {} was saved from another model than {} (its weights differ{}): a state only "
        "continues the model that made it",
        path, h->checkpoint, meta.count(kCheckpoint) ? "; it names " + meta[kCheckpoint] : ""));
  if (auto t = meta.find(kTokens); t != meta.end()) s.tokens = std::stoll(t->second);
  return s;
}

}  // namespace

void bind_stream(ModelClass& model, StreamClass& stream) {
  model
      .def("stream", &start, py::arg("prompt"), py::arg("seed") = 0,
           R"(Start a stream of generated text from a prompt.

prompt: text (str), or a sequence of token ids; at least one token.
seed:   the sampler's seed: the same prompt and seed give the same text.
The prompt is read with the parallel forward; generation then steps one token at a time with a
state of fixed size, following the context the model was trained with (generate.h).)")
      .def("load_stream", &load_stream, py::arg("path"),
           R"(A stream saved by Stream.save(), to continue where it stopped.

Raises FileNotFoundError when there is no file, and rill.Error when the file is not a saved
stream or was saved from another model (its weights differ).)");

  stream
      .def("generate", &generate, py::arg("n"), py::arg("temperature") = 1.0, py::arg("top_k") = 0,
           py::arg("top_p") = 1.0, py::arg("on_text") = py::none(),
           R"(Sample n tokens and return their text.

temperature: 0 is greedy (the most likely token), otherwise the logits are divided by it.
top_k:       keep the k most likely tokens (0: all).  top_p: nucleus mass kept (1: all).
on_text:     called with each new piece of text as soon as it is sampled (pieces hold whole
             characters); returning False stops early. An exception in it stops generation and
             is raised again; the tokens sampled so far stay in the stream.
Returns the text of the new tokens (the pieces given to on_text, joined); bytes that are not
valid UTF-8 within it become U+FFFD.)")
      .def(
          "generate_ids",
          [](PyStream& s, int64_t n, double temperature, int64_t top_k, double top_p) {
            return sample_tokens(s, n, sampler(temperature, top_k, top_p), {});
          },
          py::arg("n"), py::arg("temperature") = 1.0, py::arg("top_k") = 0, py::arg("top_p") = 1.0,
          "Sample n tokens as generate() does and return their ids (a list of int).")
      .def("feed", &feed, py::arg("text_or_ids"),
           R"(Append text (str) or token ids to the stream without sampling (the next turn of a
prompt). Feeding A then B leaves the stream as feeding A + B at once does.)")
      .def("next_logits", &next_logits,
           R"(The logits (float32, shape (vocab,)) that the next generated token is sampled from;
the stream does not change.)")
      .def("fork", &fork,
           R"(An independent copy: both go on separately, and with the same sampler position they
generate the same tokens.)")
      .def("save", &save, py::arg("path"),
           "Save the stream (state, pending token, sampler, recent tokens) to a file, atomically.")
      .def_property_readonly(
          "tokens",
          [](const PyStream& s) {
            return s.tokens >= 0 ? py::cast(s.tokens) : py::object(py::none());
          },
          R"(How many tokens the stream has read: prompt, fed and generated tokens. None for a
stream loaded from a file that does not record it (saved by `rill generate`).)")
      .def_property_readonly(
          "state_bytes", [](const PyStream& s) { return s.stream.state.bytes(); },
          "The size of its recurrent state in bytes.")
      .def_property_readonly(
          "rebuilds", [](const PyStream& s) { return s.stream.rebuilds; },
          "How many times the state was rebuilt from recent tokens (the trained context).")
      .def_property_readonly(
          "model", [](const PyStream& s) { return s.handle; }, "The rill.Model it runs on.")
      .def("__repr__", [](const PyStream& s) {
        return "<rill.Stream " +
               (s.tokens >= 0 ? std::to_string(s.tokens) + " tokens, " : std::string()) +
               std::to_string(s.stream.state.bytes()) + " state bytes>";
      });
}

}  // namespace rill::python
