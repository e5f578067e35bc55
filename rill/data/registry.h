// One listing of everything `rill data` can prepare: text corpora (corpus.h), labelled sequence
// sets for classification (labelled.h) and time series for forecasting (series.h), each with
// its kind. Names are unique across kinds, so a name is looked up once, an unknown one is
// answered with every known name, and asking for the wrong kind says what the name is.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rill/data/package.h"

namespace rill::data {

enum class DataKind { corpus, labelled, series };
const char* data_kind_name(DataKind kind);  // "corpus", "labelled", "series"

struct DataEntry {
  std::string name;
  DataKind kind;
  std::string registry, package;  // as in PackageSource
  std::string description;
};

// Corpora, then labelled sets, then series, each in its registry's order.
const std::vector<DataEntry>& data_entries();
const DataEntry* find_data(std::string_view name);  // nullptr when unknown
// Throws for an unknown name, listing every known one with its kind.
const DataEntry& data_entry(std::string_view name);
// Throws when `name` is registered as another kind than `want` (e.g. a series opened as a
// labelled set), saying what it is and which function opens it. Unregistered names pass (tests
// prepare made-up data sets); the caller handles them.
void check_data_kind(std::string_view name, DataKind want);

// What `rill data NAME` did, for any kind.
struct DataPrepared {
  std::string name;
  DataKind kind;
  std::string dir;
  std::string summary;  // one line: shapes, sizes, times (and baselines for a series)
};
// Prepares a registered data set of any kind (installing its package when needed).
DataPrepared prepare_data(const std::string& name, const std::string& data_dir, const LogFn& log);

}  // namespace rill::data
