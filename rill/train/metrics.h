// Training metrics: a JSONL log (one object per line, appended and flushed as it goes) and an
// SVG plot of the training and validation curves, redrawn from the log; the plots serve the
// benchmarks too (any x axis, several panels in one file).
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
  std::vector<std::pair<double, double>> points;  // (x, y): (step, value) for training curves
};

// One plot: curves on shared linear axes, labelled (x: x_label, y: y_label).
struct Plot {
  std::string title, x_label = "step", y_label;
  std::vector<Curve> curves;
};

// A plot as a standalone <svg> element of width x height pixels. The legend goes in the top
// corner (right, or left when the curves cross the right one and not the left).
std::string svg_plot(const Plot& plot, double width = 720, double height = 440);

// Draws curves on shared axes (x: x_label, "step" unless given; y: the metric) as a standalone
// SVG file, atomically.
void write_svg_plot(const std::string& path, const std::string& title, const std::string& y_label,
                    const std::vector<Curve>& curves, const std::string& x_label = "step");

// Several plots side by side in one SVG file (panels), atomically.
void write_svg_plots(const std::string& path, const std::vector<Plot>& plots);

// Reads (x_key, y_key) of every record of a metrics log that has both, in order.
std::vector<std::pair<double, double>> points_from_log(const std::string& log_path,
                                                       const std::string& x_key,
                                                       const std::string& y_key);

// Reads a metrics log back into curves of `key` for records where "split" is train / valid.
std::vector<Curve> curves_from_log(const std::string& log_path, const std::string& key);

}  // namespace rill
