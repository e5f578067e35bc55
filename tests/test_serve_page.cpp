// The page at / in headless Chromium (Debian's chromium-headless-shell): it opens with a prompt
// and autorun, creates a session, streams the reply in, and shows the session's state size; the
// DOM after the run must hold the prompt followed by generated text, and a screenshot is written
// to test-output/serve_page.png (its path is printed).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <regex>

#include "tests/support/files.h"
#include "tests/support/serving.h"

using namespace rill;
using namespace rill::testing;

namespace {

const char* kChromium = "chromium-headless-shell";

// Runs the browser on url with `args`; its stdout. The page is read once its virtual time
// budget is spent; a small budget runs out while the reply still streams (virtual time does not
// wait for a response body), a large one lasts until the page is idle, so the wall clock
// (timeout) bounds it.
std::string chromium(const std::string& args, const std::string& url) {
  const std::string cmd = fmt::format(
      "timeout 120 {} --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars "
      "--virtual-time-budget=100000000 {} '{}' 2>/dev/null",
      kChromium, args, url);
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

}  // namespace

TEST(ServePage, StreamsTextIntoThePageInHeadlessChromium) {
  ASSERT_EQ(std::system(fmt::format("command -v {} > /dev/null", kChromium).c_str()), 0)
      << kChromium << " is missing: scripts/setup.sh installs it";
  TempDir dir;
  serve::ServerOptions o;
  o.checkpoint = tiny_lm_checkpoint(dir.str(), 200);
  o.data_dir = dir / "data";
  o.sessions_dir = dir / "sessions";
  TestServer server(o);
  const std::string url =
      fmt::format("http://127.0.0.1:{}/?prompt=one%20then%20two.%0Atwo%20then&autorun=1&tokens=120",
                  server.port());
  const std::string dom = chromium("--dump-dom", url);
  ASSERT_NE(dom.find("<title>rill</title>"), std::string::npos) << dom.substr(0, 2000);
  EXPECT_NE(dom.find("data-done=\"1\""), std::string::npos) << "the stream never finished:\n"
                                                            << dom.substr(0, 4000);
  // The prompt, then the reply that streamed in after it.
  std::smatch m;
  const std::regex reply(
      R"re(<span class="prompt">one then two\.\ntwo then</span><span class="reply">([^<]*)</span>)re");
  ASSERT_TRUE(std::regex_search(dom, m, reply)) << dom.substr(0, 4000);
  EXPECT_GE(m[1].str().size(), 60u) << m[1].str();  // 120 byte tokens, HTML-escaped or not
  EXPECT_NE(dom.find("tokens/s"), std::string::npos);
  EXPECT_NE(dom.find("state <b>"), std::string::npos);
  // A screenshot of a second run, for people to look at.
  std::filesystem::create_directories("test-output");
  const std::string shot = std::filesystem::absolute("test-output/serve_page.png").string();
  std::filesystem::remove(shot);
  chromium(fmt::format("--screenshot={} --window-size=1000,760", shot), url);
  ASSERT_TRUE(std::filesystem::exists(shot)) << "no screenshot at " << shot;
  EXPECT_GT(std::filesystem::file_size(shot), 10000u);
  std::printf("screenshot of the page: %s\n", shot.c_str());
}
