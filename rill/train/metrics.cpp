// The JSONL metrics log and the SVG plot of the training and validation curves.
#include "rill/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "rill/core/error.h"
#include "rill/io/atomic_file.h"

namespace rill {

MetricsLog::MetricsLog(const std::string& path) : out_(path, std::ios::app), path_(path) {
  RILL_CHECK(out_.good(), "[metrics] cannot open {} for writing", path);
}

void MetricsLog::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  RILL_CHECK(out_.good(), "[metrics] writing {} failed", path_);
}

std::vector<std::pair<double, double>> points_from_log(const std::string& log_path,
                                                       const std::string& x_key,
                                                       const std::string& y_key) {
  std::vector<std::pair<double, double>> points;
  std::ifstream in(log_path);
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains(x_key) && j.contains(y_key))
      points.emplace_back(j[x_key].get<double>(), j[y_key].get<double>());
  }
  return points;
}

std::vector<Curve> curves_from_log(const std::string& log_path, const std::string& key) {
  Curve train{"train", "#1f77b4", {}}, valid{"valid", "#d62728", {}};
  std::ifstream in(log_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains(key) || !j.contains("step") || !j.contains("split"))
      continue;
    Curve& c = j["split"] == "valid" ? valid : train;
    c.points.emplace_back(j["step"].get<double>(), j[key].get<double>());
  }
  return {train, valid};
}

std::string svg_plot(const Plot& plot, double width, double height) {
  const double W = width, H = height, L = 70, R = 30, T = 40, B = 50;  // R: room for "100000"
  double x0 = std::numeric_limits<double>::max(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const Curve& c : plot.curves)
    for (auto [x, y] : c.points)
      if (std::isfinite(y))
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.05 * (y1 - y0);
  y0 = y0 >= 0 && y0 - pad < 0 ? 0 : y0 - pad;  // curves of counts and times start at 0
  y1 += pad;
  auto sx = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto sy = [&](double y) { return T + (y1 - y) / (y1 - y0) * (H - T - B); };
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n<text x=\"{}\" y=\"24\" text-anchor=\"middle\" "
      "font-size=\"15\">{}</text>\n",
      W, H, W / 2, plot.title);
  for (int i = 0; i <= 5; ++i) {  // grid and tick labels
    double yv = y0 + (y1 - y0) * i / 5, xv = x0 + (x1 - x0) * i / 5;
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{:.3g}</text>\n",
        L, sy(yv), W - R, sy(yv), L - 6, sy(yv) + 4, yv);
    svg += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:.0f}</text>\n",
        sx(xv), T, sx(xv), H - B, sx(xv), H - B + 18, xv);
  }
  svg += fmt::format(
      "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n<text x=\"16\" y=\"{}\" "
      "text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">{}</text>\n",
      (L + W - R) / 2, H - 12, plot.x_label, (T + H - B) / 2, (T + H - B) / 2, plot.y_label);
  // The legend's box in the top right corner, or the top left when only that one is free.
  int entries = 0;
  for (const Curve& c : plot.curves) entries += c.points.empty() ? 0 : 1;
  auto crossings = [&](double left) {
    int n = 0;
    for (const Curve& c : plot.curves)
      for (auto [x, y] : c.points)
        if (std::isfinite(y) && sx(x) >= left && sx(x) <= left + 130 &&
            sy(y) <= T + 10 + 18 * entries)
          ++n;
    return n;
  };
  const double right = W - R - 110, left = L + 10;
  const double lx = crossings(right - 10) > 0 && crossings(left - 10) == 0 ? left : right;
  int legend = 0;
  for (const Curve& c : plot.curves) {
    if (c.points.empty()) continue;
    std::string pts;
    for (auto [x, y] : c.points)
      if (std::isfinite(y)) pts += fmt::format("{:.1f},{:.1f} ", sx(x), sy(y));
    svg +=
        fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" points=\"{}\"/>\n",
                    c.color, pts);
    if (c.points.size() < 40)
      for (auto [x, y] : c.points)
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n", sx(x),
                           sy(y), c.color);
    svg += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"3\"/>"
        "<text x=\"{}\" y=\"{}\">{}</text>\n",
        lx, T + 14 + 18 * legend, lx + 25, T + 14 + 18 * legend, c.color, lx + 32,
        T + 18 + 18 * legend, c.name);
    ++legend;
  }
  svg += "</svg>\n";
  return svg;
}

namespace {

void write_text(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](int fd) { write_all(fd, text.data(), text.size(), path); });
}

}  // namespace

void write_svg_plot(const std::string& path, const std::string& title, const std::string& y_label,
                    const std::vector<Curve>& curves, const std::string& x_label) {
  write_text(path, svg_plot(Plot{title, x_label, y_label, curves}));
}

void write_svg_plots(const std::string& path, const std::vector<Plot>& plots) {
  const double W = 720, H = 440;
  std::string svg =
      fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">\n",
                  W * double(std::max<size_t>(plots.size(), 1)), H);
  for (size_t i = 0; i < plots.size(); ++i) {
    std::string panel = svg_plot(plots[i], W, H);
    // A nested <svg> is placed by its x attribute.
    panel.insert(4, fmt::format(" x=\"{}\" y=\"0\"", W * double(i)));
    svg += panel;
  }
  svg += "</svg>\n";
  write_text(path, svg);
}

}  // namespace rill
