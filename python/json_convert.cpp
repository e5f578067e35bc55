// JSON <-> Python objects for configs, checkpoint metadata and results. Python's json module does
// the work on the Python side, so every value JSON can hold converts exactly (ints stay ints,
// floats round-trip), and an object JSON cannot hold raises the json module's TypeError.
#include "python/bindings.h"

namespace rill::python {

nlohmann::json to_json(py::handle obj) {
  const std::string text = py::module_::import("json").attr("dumps")(obj).cast<std::string>();
  return nlohmann::json::parse(text);
}

py::object to_python(const nlohmann::json& j) {
  return py::module_::import("json").attr("loads")(j.dump());
}

}  // namespace rill::python
