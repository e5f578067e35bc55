// rill.train: a training run (train/trainer.h) from Python, with the GIL released while it
// trains. The trainer's callbacks take the GIL back: on_step sees every step and may stop the
// run, on_message gets the trainer's report lines, and Ctrl-C (KeyboardInterrupt) or an
// exception in a callback makes the trainer save a checkpoint and stop before it is raised again.
#include <filesystem>

#include "python/bindings.h"
#include "rill/train/trainer.h"

namespace rill::python {

namespace {

std::string fspath(py::handle path) { return path.cast<Path>().string(); }

TrainConfig config_of(py::handle config) {
  if (py::isinstance<py::dict>(config)) return TrainConfig::from_json(to_json(config));
  if (py::isinstance<py::str>(config) ||
      py::isinstance(config, py::module_::import("os").attr("PathLike"))) {
    const std::string path = fspath(config);
    require_file(path, "training config");
    return TrainConfig::from_file(path);
  }
  throw py::type_error("train(): config is a dict or the path of a JSON file, got " +
                       py::str(py::type::handle_of(config).attr("__name__")).cast<std::string>());
}

py::dict result_dict(const TrainResult& r, const TrainConfig& cfg) {
  py::dict valid;
  for (const auto& [name, value] : r.valid.values) valid[py::str(name)] = value;
  py::dict d;
  d["steps"] = r.steps;
  d["train_loss"] = r.train_loss;
  d["valid_loss"] = r.valid.loss;
  d["valid"] = valid;
  d["seconds"] = r.seconds;
  d["items_per_s"] = r.items_per_s;
  d["unit"] = r.unit;
  d["interrupted"] = r.interrupted;
  d["out_of_time"] = r.out_of_time;
  d["out_dir"] = cfg.out_dir;
  d["checkpoint"] = (std::filesystem::path(cfg.out_dir) / "checkpoint.safetensors").string();
  return d;
}

py::dict run_training(py::object config, py::object out_dir, py::object time_limit,
                      py::object steps, py::object data_dir, bool resume, py::object on_step,
                      py::object on_message) {
  TrainConfig cfg = config_of(config);
  if (!out_dir.is_none()) cfg.out_dir = fspath(out_dir);
  if (!data_dir.is_none()) cfg.data_dir = fspath(data_dir);
  if (!time_limit.is_none()) cfg.time_limit_s = time_limit.cast<double>();
  if (!steps.is_none()) cfg.steps = steps.cast<int64_t>();
  cfg.validate();  // the overrides too

  CallbackErrors errors;
  bool stop = false;  // on_step returned False, or a callback raised
  // Runs f with the GIL held; an exception it raises is kept and stops the run.
  auto guarded = [&](auto&& f) {
    py::gil_scoped_acquire gil;
    try {
      f();
    } catch (...) {
      errors.keep();
      stop = true;
    }
  };
  TrainEvents events;
  if (!on_step.is_none())
    events.on_step = [&](const StepEvent& e) {
      guarded([&] {
        py::dict d;
        d["step"] = e.step;
        d["horizon"] = e.horizon;
        d["loss"] = e.loss;
        d["lr"] = e.lr;
        d["elapsed_s"] = e.elapsed_s;
        d["items_per_s"] = e.items_per_s;
        d["unit"] = e.unit;
        if (on_step(d).is(py::bool_(false))) stop = true;
      });
    };
  if (!on_message.is_none())
    events.on_message = [&](const std::string& line) {
      guarded([&] { on_message(utf8_text(line)); });
    };
  events.should_stop = [&] {
    if (!stop)
      guarded([&] {
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();  // Ctrl-C
      });
    return stop;
  };

  TrainResult r;
  {
    py::gil_scoped_release no_gil;
    r = train(cfg, resume, events);
  }
  errors.rethrow_if_kept();
  return result_dict(r, cfg);
}

}  // namespace

void bind_train(py::module_& m) {
  m.def("train", &run_training, py::arg("config"), py::kw_only(), py::arg("out_dir") = py::none(),
        py::arg("time_limit") = py::none(), py::arg("steps") = py::none(),
        py::arg("data_dir") = py::none(), py::arg("resume") = false,
        py::arg("on_step") = py::none(), py::arg("on_message") = py::none(),
        R"(Train a model as `rill train` does, and return a summary of the run.

config:     a dict, or the path of a JSON file: {"task": {...}, "model": {...}, "batch": ...,
            "steps": ..., "lr": ..., "out_dir": ..., "data_dir": ...} (see configs/).
out_dir, time_limit (seconds of training, 0: none), steps, data_dir: override the config's.
resume:     continue the run saved in out_dir/checkpoint.safetensors exactly where it stopped.
on_step:    called after every optimiser step with a dict (step, horizon, loss, lr, elapsed_s,
            items_per_s, unit); returning False saves a checkpoint and stops the run.
on_message: called with each line the trainer reports (validations, the time budget, ...).
An exception raised in a callback, or KeyboardInterrupt (Ctrl-C), also saves and stops the
run, and is then raised again.

Returns a dict: steps, train_loss, valid_loss, valid (the validation metrics by name),
seconds, items_per_s, unit, interrupted (stopped by a callback), out_of_time, out_dir and
checkpoint (the path of the saved checkpoint).)");
}

}  // namespace rill::python
