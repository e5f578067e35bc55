// What the files of the Python module share: the loaded model behind rill.Model (with its lock),
// JSON <-> Python conversion, NumPy <-> Tensor conversion, and the way an exception raised in a
// Python callback crosses the library (which runs with the GIL released) and is raised again.
//
// Locking (Computing, below): a call that computes releases the GIL first and then takes the
// model's mutex, and a callback takes the GIL back while holding the mutex; the mutex is never
// taken with the GIL held, so two Python threads using one model cannot deadlock (their calls run
// one at a time), and a callback that calls its own model again is refused, not deadlocked.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <atomic>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "rill/backend/cpu/denormals.h"
#include "rill/data/tokenizer.h"
#include "rill/train/checkpoint.h"
#include "rill/train/generate.h"

namespace rill::python {

namespace py = pybind11;

// A checkpoint loaded for inference, shared by rill.Model and every rill.Stream made from it.
struct ModelHandle {
  LoadedModel loaded;
  std::string checkpoint;  // the path it was loaded from
  std::string data_dir;    // where a word model's vocabulary lives
  WeightFormat format = WeightFormat::f32;
  ContextPolicy policy;  // the training context (generate.h)
  py::dict info;         // rill.Model.info, built once

  std::mutex mutex;                    // held by every computation on the model (Computing)
  std::atomic<std::thread::id> owner;  // the thread that holds it, if any
  // Both made on first use: the stepper under the mutex, the tokenizer under the GIL.
  std::unique_ptr<ModelStepper> stepper;
  std::unique_ptr<data::Tokenizer> tokenizer;

  SequenceModel& model() { return *loaded.model; }
  ModelStepper& step_path();        // call with the mutex held
  const data::Tokenizer& tokens();  // call with the GIL held; errors for non-text models
  // Text (str, encoded) or a sequence of token ids (each checked against the vocabulary).
  std::vector<int64_t> ids_of(py::handle text_or_ids, const char* where);
};

// The scope of a computation on a model: the GIL released, the model's mutex held, denormals
// flushed (as every command of the CLI runs). Constructed with the GIL held; a call from a
// callback of a computation on the same model (the mutex is this thread's already) raises
// RuntimeError instead of deadlocking.
class Computing {
 public:
  explicit Computing(ModelHandle& h) : h_(free_for_this_thread(h)), lock_(h.mutex) {
    h_.owner = std::this_thread::get_id();
  }
  ~Computing() { h_.owner = std::thread::id(); }
  Computing(const Computing&) = delete;
  Computing& operator=(const Computing&) = delete;

 private:
  static ModelHandle& free_for_this_thread(ModelHandle& h) {
    if (h.owner.load() == std::this_thread::get_id())
      throw std::runtime_error(
          "this model is computing the call whose callback this is: use it after that call "
          "returns (or rill.load the checkpoint again for a second model)");
    return h;
  }
  ModelHandle& h_;
  py::gil_scoped_release no_gil_;
  std::lock_guard<std::mutex> lock_;
  const cpu::FlushDenormalsGuard flush_;
};

// A stream of one sequence on a model (rill.Stream).
struct PyStream {
  std::shared_ptr<ModelHandle> handle;
  Stream stream;
  int64_t tokens = -1;  // tokens in its history, pending included; -1: unknown (see stream.cpp)
};

// Paths from Python: str or os.PathLike (pathlib.Path).
using Path = std::filesystem::path;

using ModelClass = py::class_<ModelHandle, std::shared_ptr<ModelHandle>>;
using StreamClass = py::class_<PyStream>;

// Bytes from the library as a Python str; bytes that are not valid UTF-8 become U+FFFD.
py::str utf8_text(const std::string& bytes);
// Raises FileNotFoundError (errno ENOENT) for `path` when nothing is there; `what` says what the
// file should have been ("checkpoint", "stream state", ...).
void require_file(const std::string& path, const char* what);

// JSON values and Python objects (dict, list, str, int, float, bool, None), through the json
// module: exact for every value JSON holds.
nlohmann::json to_json(py::handle obj);
py::object to_python(const nlohmann::json& j);

// A NumPy array copied into a new Tensor: int64 [B, T] token ids for a model that reads tokens
// (each checked against the vocabulary), float32 [B, T, F] for one that reads features; for
// one_step, [B] and [B, F]. Anything else raises TypeError (not an array, wrong dtype) or
// ValueError (wrong shape, id out of range) whose message starts with `where`.
Tensor tensor_from_numpy(py::handle obj, const ModelIO& io, bool one_step, const char* where);
// A float32 NumPy array that views the tensor's storage (converted to a contiguous f32 copy
// first only when it is not one already); the array keeps the storage alive.
py::array numpy_from_tensor(Tensor t);

// Carries a Python exception raised in a callback out of library code that runs without the
// GIL. In the callback (GIL held): `catch (...) { errors.keep(); }`, then throw Stop() to unwind
// the library call (or, where the library polls a stop flag, raise the flag); Stop() alone ends
// it at a callback's request. After the library call (GIL held again), rethrow_if_kept() raises
// the kept exception, if any.
class CallbackErrors {
 public:
  struct Stop {};  // unwinds the library call; not an error by itself
  void keep() { kept_ = std::current_exception(); }
  bool any() const { return kept_ != nullptr; }
  void rethrow_if_kept() {
    if (kept_) std::rethrow_exception(std::exchange(kept_, nullptr));
  }

 private:
  std::exception_ptr kept_;
};

void bind_model(py::module_& m, ModelClass& model);
void bind_stream(ModelClass& model, StreamClass& stream);
void bind_train(py::module_& m);
void bind_data(py::module_& m);

}  // namespace rill::python
