// A small CSV reader for the tables the data sets come as (R's write.csv, stdlib's and vega's
// data files, sklearn's digits): comma-separated fields, an optional header row, fields that
// may be double-quoted ("" inside quotes is one quote), LF or CRLF line ends, no empty lines
// inside the table. Every row must have as many fields as the first; numbers parse strictly, so
// a missing value (R's NA, an empty field) is an error naming the line and column, never a 0.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rill::data {

class CsvTable {
 public:
  // source names the table in errors (e.g. "digits.csv"). With has_header the first row gives
  // the column names.
  static CsvTable parse(std::string_view text, bool has_header, std::string source);

  int64_t rows() const { return rows_; }  // data rows, header excluded
  int64_t cols() const { return cols_; }
  const std::vector<std::string>& header() const { return header_; }
  const std::string& cell(int64_t row, int64_t col) const;
  // The index of a named column; an unknown name gives an error listing the header.
  int64_t column(std::string_view name) const;
  // The cell as a finite number; errors name the source, the line, the column and the text.
  double number(int64_t row, int64_t col) const;
  int64_t line_of(int64_t row) const;  // 1-based line in the text, for messages
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::vector<std::string> header_;
  std::vector<std::string> cells_;  // row-major, rows_ x cols_
  std::vector<int64_t> lines_;      // the line each data row starts on
  int64_t rows_ = 0, cols_ = 0;
};

}  // namespace rill::data
