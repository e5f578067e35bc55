// The Python module `rill`: the module itself, its exception, and the order its classes are
// registered in. Each part lives in its own file: model.cpp (rill.load, Model, State),
// stream.cpp (Stream), train.cpp (rill.train), data.cpp (rill.prepare_corpus, prepare_data).
#include "python/bindings.h"

namespace py = pybind11;
using namespace rill::python;

PYBIND11_MODULE(rill, m) {
  m.doc() = R"(rill: recurrent transformers in C++, from Python.

  model = rill.load("runs/default/checkpoint.safetensors")
  stream = model.stream("Psalms 23\n", seed=1)
  print(stream.generate(200, temperature=0.8))

rill.load gives a Model (parallel forward and recurrent step on NumPy arrays, tokenizer,
streams); rill.train trains from a config; rill.prepare_corpus and rill.prepare_data make data.
Errors of the library raise rill.Error (a RuntimeError) with its message.)";

  py::register_exception<rill::Error>(m, "Error", PyExc_RuntimeError).doc() =
      "An error reported by the rill library; the message says what and where.";

  // Both classes exist before any method is defined, so signatures name them.
  ModelClass model(m, "Model", R"(A trained model loaded by rill.load().

Its computations release the GIL; calls on one model from several threads run one at a time.)");
  StreamClass stream(
      m, "Stream",
      R"(A sequence generated token by token (from Model.stream or Model.load_stream).

It holds the recurrent state after every token it has read but the last (which waits to be fed),
the sampler's position and the recent tokens; generation continues from there.)");
  bind_model(m, model);
  bind_stream(model, stream);
  bind_train(m);
  bind_data(m);
}
