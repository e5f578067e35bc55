// NumPy arrays in and out of the library. Input is copied: a rill Tensor owns its memory through
// the caching allocator (core/storage.h) and cannot view memory it did not allocate, and a copy
// of the input costs little beside a forward. Output is not copied: the array views the result
// tensor's storage, kept alive by a capsule that owns a handle to the tensor.
#include <cstring>

#include "python/bindings.h"

namespace rill::python {

namespace {

std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string dtype_text(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

}  // namespace

Tensor tensor_from_numpy(py::handle obj, const ModelIO& io, bool one_step, const char* where) {
  const std::string fn = where;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(fn + " takes a NumPy array, got " +
                         py::str(py::type::handle_of(obj).attr("__name__")).cast<std::string>());
  py::array a = py::reinterpret_borrow<py::array>(obj);
  const bool tokens = io.vocab > 0;
  const std::string dims = one_step ? "(batch" : "(batch, time";
  const std::string want =
      tokens ? "int64 token ids of shape " + dims + ")"
             : "float32 features of shape " + dims + ", " + std::to_string(io.in_features) + ")";
  if (!a.dtype().equal(tokens ? py::dtype::of<int64_t>() : py::dtype::of<float>()))
    throw py::type_error(fn + ": this model reads " + want + ", got an array of dtype " +
                         dtype_text(a) + " (convert it with .astype(numpy." +
                         (tokens ? "int64" : "float32") + "))");
  const py::ssize_t rank = (tokens ? 2 : 3) - (one_step ? 1 : 0);
  if (a.ndim() != rank || (!tokens && a.shape(rank - 1) != io.in_features))
    throw py::value_error(fn + ": this model reads " + want + ", got shape " + shape_text(a));
  for (py::ssize_t d = 0; d < (one_step ? 1 : 2); ++d)
    if (a.shape(d) == 0)
      throw py::value_error(fn + ": the batch and time sizes must be positive, got shape " +
                            shape_text(a));
  // Same dtype, so this copies only a non-contiguous array.
  a = py::array::ensure(a, py::array::c_style);
  Shape shape(a.shape(), a.shape() + a.ndim());
  Tensor t = Tensor::empty(shape, tokens ? DType::i64 : DType::f32);
  std::memcpy(t.data_ptr(), a.data(), t.nbytes());
  if (tokens) {
    const int64_t* ids = t.data<int64_t>();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (ids[i] < 0 || ids[i] >= io.vocab)
        throw py::value_error(fn + ": token id " + std::to_string(ids[i]) + " at flat index " +
                              std::to_string(i) + " is outside the vocabulary [0, " +
                              std::to_string(io.vocab) + ")");
  }
  return t;
}

py::array numpy_from_tensor(Tensor t) {
  if (t.dtype() != DType::f32) t = t.to(DType::f32);
  t = t.contiguous();
  auto* owner = new Tensor(t);
  py::capsule keep(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end()), strides;
  for (int64_t s : t.strides()) strides.push_back(s * py::ssize_t(sizeof(float)));
  return py::array_t<float>(shape, strides, t.data<float>(), keep);
}

}  // namespace rill::python
