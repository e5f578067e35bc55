// Training metrics: a JSONL log (one object per line, appended and flushed as it goes) and an
// SVG plot of the training and validation curves, redrawn from the log.
#pragma once
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rill {

class MetricsLog {
 public:
  // Appends to path (a resumed run continues its log).
  explicit MetricsLog(const std::string& path);
  void write(const nlohmann::json& record);  // one line, flushed

 private:
  std::ofstream out_;
  std::string path_;
};

struct Curve {
  std::string name, color;
  std::vector<std::pair<double, double>> points;  // (step, value)
};

// Draws curves on shared axes (x: step, y: the metric) as a standalone SVG file, atomically.
void write_svg_plot(const std::string& path, const std::string& title, const std::string& y_label,
                    const std::vector<Curve>& curves);

// Reads a metrics log back into curves of `key` for records where "split" is train / valid.
std::vector<Curve> curves_from_log(const std::string& log_path, const std::string& key);

}  // namespace rill
