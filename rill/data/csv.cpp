// CSV reading (see csv.h).
#include "rill/data/csv.h"

#include <charconv>
#include <cmath>

#include "rill/core/error.h"

namespace rill::data {

CsvTable CsvTable::parse(std::string_view text, bool has_header, std::string source) {
  CsvTable t;
  t.source_ = std::move(source);
  size_t i = 0;
  int64_t line = 1;
  bool first = true;
  while (i < text.size()) {
    // Blank lines at the very end (an extra newline) are not a row.
    if (text.find_first_not_of("\r\n", i) == std::string_view::npos) break;
    const int64_t row_line = line;
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false, was_quoted = false;
    // One record: ends at a newline outside quotes or at the end of the text.
    for (;; ++i) {
      if (i == text.size()) {
        RILL_CHECK(!quoted, "[data] {}: line {}: a quoted field is never closed", t.source_,
                   row_line);
        break;
      }
      const char c = text[i];
      if (quoted) {
        if (c == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            ++i;
          } else {
            quoted = false;
          }
        } else {
          if (c == '\n') ++line;
          field += c;
        }
        continue;
      }
      if (c == '"') {
        RILL_CHECK(field.empty() && !was_quoted,
                   "[data] {}: line {}: a quote inside an unquoted field", t.source_, line);
        quoted = was_quoted = true;
      } else if (c == ',') {
        fields.push_back(std::move(field));
        field.clear();
        was_quoted = false;
      } else if (c == '\n' || c == '\r') {
        if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
        ++i;
        ++line;
        break;
      } else {
        RILL_CHECK(!was_quoted, "[data] {}: line {}: text after a closing quote", t.source_, line);
        field += c;
      }
    }
    fields.push_back(std::move(field));
    RILL_CHECK(!(fields.size() == 1 && fields[0].empty() && !was_quoted),
               "[data] {}: line {} is empty", t.source_, row_line);
    if (first) {
      t.cols_ = static_cast<int64_t>(fields.size());
      first = false;
      if (has_header) {
        t.header_ = std::move(fields);
        continue;
      }
    }
    RILL_CHECK(static_cast<int64_t>(fields.size()) == t.cols_,
               "[data] {}: line {} has {} fields, the first line has {}", t.source_, row_line,
               fields.size(), t.cols_);
    for (auto& f : fields) t.cells_.push_back(std::move(f));
    t.lines_.push_back(row_line);
    ++t.rows_;
  }
  RILL_CHECK(t.rows_ > 0, "[data] {}: no data rows", t.source_);
  return t;
}

const std::string& CsvTable::cell(int64_t row, int64_t col) const {
  RILL_CHECK(row >= 0 && row < rows_ && col >= 0 && col < cols_,
             "[data] {}: no cell ({}, {}) in a table of {} rows and {} columns", source_, row, col,
             rows_, cols_);
  return cells_[size_t(row * cols_ + col)];
}

int64_t CsvTable::column(std::string_view name) const {
  for (size_t c = 0; c < header_.size(); ++c)
    if (header_[c] == name) return static_cast<int64_t>(c);
  fail("[data] {}: no column \"{}\" (columns: {})", source_, name, fmt::join(header_, ", "));
}

int64_t CsvTable::line_of(int64_t row) const {
  RILL_CHECK(row >= 0 && row < rows_, "[data] {}: no row {}", source_, row);
  return lines_[size_t(row)];
}

double CsvTable::number(int64_t row, int64_t col) const {
  const std::string& s = cell(row, col);
  auto where = [&] {
    return fmt::format("{}: line {}, column {}", source_, line_of(row),
                       header_.empty() ? std::to_string(col + 1) : "\"" + header_[col] + "\"");
  };
  double v = 0;
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  // from_chars takes no leading '+'; R and others never write one, but be lenient.
  if (begin != end && *begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, v);
  RILL_CHECK(!s.empty() && ec == std::errc() && ptr == end && std::isfinite(v),
             "[data] {}: \"{}\" is not a number{}", where(), s,
             s.empty() || s == "NA" ? " (a missing value)" : "");
  return v;
}

}  // namespace rill::data
