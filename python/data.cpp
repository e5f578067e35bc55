// Data from Python: rill.prepare_data (what `rill data NAME` does for a registered data set) and
// rill.prepare_corpus (a language-modelling corpus made from your own text, data/corpus.h), both
// with the GIL released while they work.
#include "python/bindings.h"
#include "rill/data/corpus.h"
#include "rill/data/registry.h"

namespace rill::python {

namespace {

py::dict prepare_corpus(const std::string& name, const std::string& text, const Path& data_dir,
                        const std::string& tokenizer, int valid_percent, int test_percent,
                        int64_t max_vocab) {
  data::CorpusInfo info;
  info.name = name;
  info.registry = "python";
  info.package = "none";
  info.description = "prepared from text given to rill.prepare_corpus";
  info.tokenizer = data::parse_tokenizer_kind(tokenizer);
  data::PrepareOptions options;
  options.valid_percent = valid_percent;
  options.test_percent = test_percent;
  options.max_vocab = max_vocab;
  data::PrepareReport r;
  {
    py::gil_scoped_release no_gil;
    r = data::prepare_text(info, text, data_dir.string(), options);
  }
  py::dict d;
  d["dir"] = r.dir;
  d["raw_bytes"] = r.raw_bytes;
  d["train_tokens"] = r.train.tokens;
  d["valid_tokens"] = r.valid.tokens;
  d["test_tokens"] = r.test.tokens;
  d["vocab_size"] = r.vocab_size;
  return d;
}

py::dict prepare_data(const std::string& name, const Path& data_dir, py::object on_message) {
  CallbackErrors errors;
  data::LogFn log;
  if (!on_message.is_none())
    log = [&](const std::string& line) {
      py::gil_scoped_acquire gil;
      if (errors.any()) return;
      try {
        on_message(utf8_text(line));
      } catch (...) {
        errors.keep();  // preparing goes on; the exception is raised when it is done
      }
    };
  data::DataPrepared p;
  {
    py::gil_scoped_release no_gil;
    p = data::prepare_data(name, data_dir.string(), log);
  }
  errors.rethrow_if_kept();
  py::dict d;
  d["name"] = p.name;
  d["kind"] = data::data_kind_name(p.kind);
  d["dir"] = p.dir;
  d["summary"] = p.summary;
  return d;
}

}  // namespace

void bind_data(py::module_& m) {
  m.def("prepare_corpus", &prepare_corpus, py::arg("name"), py::arg("text"),
        py::arg("data_dir") = "data", py::arg("tokenizer") = "bytes", py::arg("valid_percent") = 5,
        py::arg("test_percent") = 5, py::arg("max_vocab") = 10000,
        R"(Prepare a language-modelling corpus from your own text, under data_dir/name.

text:      str (stored as UTF-8) or bytes.
tokenizer: "bytes" (256 ids) or "words" (a vocabulary of at most max_vocab words, built from the
           training split).
The last test_percent of the text (from a line start) is the test split and the valid_percent
before it the validation split. A training config then names it: {"task": {"type":
"language_modeling", "corpus": name}, "data_dir": data_dir, ...}.
Returns a dict: dir, raw_bytes, train_tokens, valid_tokens, test_tokens, vocab_size.)");
  m.def("prepare_data", &prepare_data, py::arg("name"), py::arg("data_dir") = "data",
        py::arg("on_message") = py::none(),
        R"(Install and prepare a registered data set, as `rill data NAME` does (a corpus, a
labelled sequence set or a series; the package is installed when missing).

on_message: called with each progress line.
Returns a dict: name, kind, dir, summary.)");
}

}  // namespace rill::python
