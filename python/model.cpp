// rill.load, rill.Model and rill.State: a checkpoint loaded for inference, its description, its
// tokenizer, and the model on NumPy arrays, as a whole sequence at once (forward) or as an RNN one
// step at a time (step), computed with the GIL released.
#include <cerrno>
#include <filesystem>

#include "python/bindings.h"
#include "rill/tasks/language_modeling.h"

namespace rill::python {

ModelStepper& ModelHandle::step_path() {
  if (!stepper) stepper = model().make_stepper(1, format);
  return *stepper;
}

const data::Tokenizer& ModelHandle::tokens() {
  if (!tokenizer) tokenizer = trained_tokenizer(loaded.info.task, data_dir);
  return *tokenizer;
}

std::vector<int64_t> ModelHandle::ids_of(py::handle text_or_ids, const char* where) {
  if (py::isinstance<py::str>(text_or_ids)) {
    const std::vector<int32_t> ids = tokens().encode(text_or_ids.cast<std::string>());
    return {ids.begin(), ids.end()};
  }
  std::vector<int64_t> ids;
  try {
    if (py::isinstance<py::bytes>(text_or_ids)) throw py::cast_error();
    ids = text_or_ids.cast<std::vector<int64_t>>();
  } catch (const py::cast_error&) {
    throw py::type_error(
        std::string(where) + " takes text (str) or a sequence of token ids (int), got " +
        py::str(py::type::handle_of(text_or_ids).attr("__name__")).cast<std::string>());
  }
  const int64_t vocab = model().io().vocab;
  if (vocab <= 0)
    throw py::type_error(std::string(where) + ": this model reads features, not tokens");
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw py::value_error(std::string(where) + ": token id " + std::to_string(ids[i]) +
                            " at index " + std::to_string(i) + " is outside the vocabulary [0, " +
                            std::to_string(vocab) + ")");
  return ids;
}

py::str utf8_text(const std::string& bytes) {
  PyObject* s = PyUnicode_DecodeUTF8(bytes.data(), py::ssize_t(bytes.size()), "replace");
  if (!s) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

void require_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return;
  py::object exc =
      py::module_::import("builtins")
          .attr("FileNotFoundError")(ENOENT, std::string("no ") + what + " at this path", path);
  PyErr_SetObject(exc.get_type().ptr(), exc.ptr());
  throw py::error_already_set();
}

namespace {

py::dict describe(ModelHandle& h) {
  const CheckpointInfo& ci = h.loaded.info;
  const ModelIO& io = h.model().io();
  // Costs at the context the model was trained for (a KV cache grows with it), else at 1024.
  const int64_t context = h.policy.trained_context > 0 ? h.policy.trained_context : 1024;
  const ModelInfo mi = h.model().info(context);
  py::dict d;
  d["checkpoint"] = h.checkpoint;
  d["parameters"] = mi.parameters;
  d["flops_per_token"] = mi.flops_per_token;
  d["state_bytes"] = mi.state_bytes;
  d["constant_state"] = mi.constant_state;
  d["context"] = context;
  d["trained_context"] = h.policy.trained_context;
  d["vocab"] = io.vocab;
  d["in_features"] = io.in_features;
  d["out_dim"] = io.out_dim;
  d["weights"] = weight_format_name(h.format);
  d["weights_sha256"] = ci.weights_sha256;
  d["step"] = ci.progress.step;
  d["model"] = to_python(ci.model);
  d["task"] = to_python(ci.task);
  d["run"] = to_python(ci.run);
  return d;
}

std::shared_ptr<ModelHandle> load(const Path& checkpoint_path, const Path& data_dir,
                                  const std::string& weights) {
  const std::string checkpoint = checkpoint_path.string();
  require_file(checkpoint, "checkpoint");
  auto h = std::make_shared<ModelHandle>();
  h->checkpoint = checkpoint;
  h->data_dir = data_dir.string();
  h->format = weight_format_from_name(weights);
  {
    py::gil_scoped_release no_gil;
    h->loaded = load_model(checkpoint);
    // The parallel forward then computes with the weights the step path reads.
    round_weights_to(h->model(), h->format);
  }
  h->policy = ContextPolicy{h->loaded.info.task.value("trained_context", int64_t(0))};
  h->info = describe(*h);
  return h;
}

// rill.State: the recurrent state of `batch` sequences of one model, for forward() and step().
struct PyState {
  std::shared_ptr<ModelHandle> handle;
  State state;
  int64_t batch = 0;
};

State& state_for(ModelHandle& h, PyState& s, int64_t batch, const char* where) {
  if (s.handle.get() != &h)
    throw py::value_error(std::string(where) + ": the state belongs to another model");
  if (s.batch != batch)
    throw py::value_error(std::string(where) + ": the state holds " + std::to_string(s.batch) +
                          " sequences but the input has a batch of " + std::to_string(batch));
  return s.state;
}

py::array forward(ModelHandle& h, py::object x, PyState* state) {
  const Tensor in = tensor_from_numpy(x, h.model().io(), false, "forward()");
  State* s = state ? &state_for(h, *state, in.size(0), "forward()") : nullptr;
  Tensor out;
  {
    const Computing computing(h);
    NoGradGuard no_grad;
    State fresh;
    if (!s) fresh = h.model().init_state(in.size(0));
    out = h.model().forward(in, s ? s : &fresh);
  }
  return numpy_from_tensor(out);
}

py::array step(ModelHandle& h, py::object x, PyState& state) {
  const Tensor in = tensor_from_numpy(x, h.model().io(), true, "step()");
  State& s = state_for(h, state, in.size(0), "step()");
  Tensor out;
  {
    const Computing computing(h);
    out = h.model().step(in, s).clone();  // its own memory, whatever the model's step returns
  }
  return numpy_from_tensor(out);
}

}  // namespace

void bind_model(py::module_& m, ModelClass& model) {
  py::class_<PyState>(m, "State", R"(The recurrent state of a batch of sequences of one model
(from Model.initial_state), read and updated in place by Model.forward and Model.step.)")
      .def_property_readonly(
          "batch", [](const PyState& s) { return s.batch; }, "How many sequences it holds.")
      .def_property_readonly(
          "bytes", [](const PyState& s) { return s.state.bytes(); },
          "Its size in bytes (all sequences).")
      .def(
          "clone",
          [](const PyState& s) {
            return PyState{s.handle, s.state.clone(), s.batch};
          },
          "An independent copy.")
      .def("__repr__", [](const PyState& s) {
        return "<rill.State of " + std::to_string(s.batch) + " sequences, " +
               std::to_string(s.state.bytes()) + " bytes>";
      });

  m.def("load", &load, py::arg("checkpoint"), py::arg("data_dir") = "data",
        py::arg("weights") = "f32",
        R"(Load a trained model from a checkpoint file for inference.

checkpoint: the path of a checkpoint.safetensors written by training.
data_dir:   where prepared corpora live; only a word-level language model needs it (for its
            vocabulary), when it first encodes or decodes text.
weights:    "f32" (exact), "bf16" or "int8": the format the weights are computed in, by the
            parallel forward and the step path alike.

Raises FileNotFoundError when there is no file, rill.Error when it is not a rill checkpoint.)");

  model
      .def_property_readonly(
          "info",
          [](const ModelHandle& h) { return py::module_::import("copy").attr("deepcopy")(h.info); },
          R"(A dict describing the model (a copy).

parameters, flops_per_token, state_bytes: per stream, at `context` tokens (the trained
context, or 1024 when unbounded); constant_state: the state does not grow with the context;
trained_context (0: unbounded); vocab (0 for a feature model), in_features, out_dim; weights
(the format), weights_sha256; step (training steps done); checkpoint (the path); and the model
config, task description and run settings as dicts: "model", "task", "run".)")
      .def(
          "encode",
          [](ModelHandle& h, const std::string& text) {
            const std::vector<int32_t> ids = h.tokens().encode(text);
            return std::vector<int64_t>(ids.begin(), ids.end());
          },
          py::arg("text"), "Token ids of `text` (a list of int), with the model's tokenizer.")
      .def(
          "decode",
          [](ModelHandle& h, py::object ids) {
            if (py::isinstance<py::str>(ids))
              throw py::type_error("decode() takes token ids, not str");
            const std::vector<int64_t> v = h.ids_of(ids, "decode()");
            const std::vector<int32_t> v32(v.begin(), v.end());
            return utf8_text(h.tokens().decode(v32));
          },
          py::arg("ids"),
          "The text of a sequence of token ids (bytes that are not valid UTF-8 become U+FFFD).")
      .def("forward", &forward, py::arg("x"), py::arg("state") = nullptr,
           R"(The parallel forward over whole sequences, on a NumPy array.

x:     int64 token ids of shape (batch, time) for a model that reads tokens, or float32
       features of shape (batch, time, in_features) for one that reads features. Any memory
       layout; it is copied.
state: None (each sequence starts from a fresh state) or a rill.State from initial_state(batch)
       to continue from; it is updated in place to the state after the last time step.
Returns float32 outputs (logits for a language model) of shape (batch, time, out_dim).
Raises TypeError for another dtype, ValueError for another shape, an id outside the vocabulary
or a state of another model or batch.)")
      .def(
          "initial_state",
          [](const std::shared_ptr<ModelHandle>& h, int64_t batch) {
            if (batch <= 0) throw py::value_error("initial_state(): batch must be positive");
            return PyState{h, h->model().init_state(batch), batch};
          },
          py::arg("batch") = 1,
          "A fresh recurrent state for `batch` sequences, for forward() and step().")
      .def("step", &step, py::arg("x"), py::arg("state"),
           R"(One time step of the recurrent form: the model as an RNN.

x:     int64 token ids of shape (batch,), or float32 features of shape (batch, in_features).
state: a rill.State from initial_state(batch), updated in place.
Returns float32 outputs of shape (batch, out_dim). Stepping a sequence token by token gives
the outputs forward() gives for it at once.)")
      .def("__repr__", [](const ModelHandle& h) {
        return "<rill.Model " + h.checkpoint + ": " +
               py::str(h.info["parameters"]).cast<std::string>() + " parameters>";
      });
}

}  // namespace rill::python
