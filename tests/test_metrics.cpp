// The SVG plots of train/metrics.h: the x-axis label (default "step"), panels side by side in
// one file, and the legend moved out of the way of rising curves.
#include <gtest/gtest.h>

#include "rill/train/metrics.h"
#include "tests/support/files.h"

using namespace rill;
using namespace rill::testing;

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

const Curve kFalling{"loss", "#1f77b4", {{0, 3.0}, {10, 2.0}, {20, 1.5}}};
const Curve kRising{"time", "#d62728", {{0, 0.0}, {50000, 10.0}, {100000, 40.0}}};

TEST(Metrics, SvgPlotLabelsItsXAxisStepUnlessTold) {
  TempDir dir;
  write_svg_plot(dir / "a.svg", "curves", "loss", {kFalling});
  const std::string a = read_all(dir / "a.svg");
  EXPECT_EQ(count(a, ">step</text>"), 1u);
  EXPECT_EQ(count(a, ">loss</text>"), 2u);  // the y label and the legend
  write_svg_plot(dir / "b.svg", "curves", "seconds", {kRising}, "tokens");
  const std::string b = read_all(dir / "b.svg");
  EXPECT_EQ(count(b, ">tokens</text>"), 1u);
  EXPECT_EQ(count(b, ">step</text>"), 0u);
  EXPECT_EQ(count(b, ">100000</text>"), 1u);  // the last x tick
}

TEST(Metrics, PanelsSitSideBySideInOneFile) {
  TempDir dir;
  write_svg_plots(dir / "p.svg", {Plot{"Cumulative time", "tokens", "seconds", {kRising}},
                                  Plot{"Memory", "tokens", "MiB", {kRising, kFalling}}});
  const std::string p = read_all(dir / "p.svg");
  EXPECT_EQ(count(p, "<svg "), 3u);  // the file and two panels
  EXPECT_EQ(count(p, "</svg>"), 3u);
  EXPECT_NE(p.find("width=\"1440\""), std::string::npos);
  EXPECT_NE(p.find("<svg x=\"720\" y=\"0\""), std::string::npos);
  EXPECT_NE(p.find(">Cumulative time</text>"), std::string::npos);
  EXPECT_NE(p.find(">Memory</text>"), std::string::npos);
  EXPECT_EQ(count(p, ">tokens</text>"), 2u);
}

TEST(Metrics, LegendMovesLeftOfCurvesThatRiseToTheRight) {
  // A falling curve leaves the top right free; a rising one crosses it and leaves the top left.
  const std::string falling = svg_plot(Plot{"t", "step", "loss", {kFalling}});
  const std::string rising = svg_plot(Plot{"t", "tokens", "seconds", {kRising}});
  EXPECT_NE(falling.find("<line x1=\"580\""), std::string::npos);  // W - R - 110
  EXPECT_NE(rising.find("<line x1=\"80\""), std::string::npos);    // L + 10
}

}  // namespace
