// safetensors: round trips for every dtype, metadata, strided sources, half/bfloat16 rounding,
// and one distinct error for each kind of corrupt or truncated file.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "rill/io/safetensors.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("rill_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
}

// A file made of a raw JSON header and `data_bytes` bytes of data.
std::string raw_file(const std::string& json, size_t data_bytes) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + json + std::string(data_bytes, '\x01');
}

void expect_load_error(const std::string& bytes, const std::vector<std::string>& parts) {
  TempDir dir;
  std::string path = dir.file("bad.safetensors");
  write_bytes(path, bytes);
  std::vector<std::string> all = parts;
  all.push_back(path);  // every error names the file
  expect_error([&] { SafetensorsReader r(path); }, all);
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  TempDir dir;
  std::string path = dir.file("m.safetensors");
  Tensor a = random({3, 4}, DType::f32, 1), b = random({5}, DType::f64, 2);
  Tensor c = Tensor::randint({2, 2}, -100, 100, 3, DType::i32);
  Tensor d = Tensor::randint({7}, -(int64_t(1) << 40), int64_t(1) << 40, 4, DType::i64);
  Tensor s = random_strided({4, 3}, DType::f32, 5);  // written from a non-contiguous view
  Tensor empty = Tensor::empty({0, 3}, DType::f32);
  save_safetensors(path, {{"a", a}, {"b.w", b}, {"c", c}, {"d", d}, {"s", s}, {"e", empty}},
                   {{"config", "{\"d_model\": 8}"}, {"format", "pt"}});
  SafetensorsReader r(path);
  EXPECT_EQ(r.metadata().at("config"), "{\"d_model\": 8}");
  EXPECT_EQ(r.names().size(), 6u);
  EXPECT_TRUE(bitwise_equal(r.load("a"), a));
  EXPECT_TRUE(bitwise_equal(r.load("b.w"), b));
  EXPECT_TRUE(bitwise_equal(r.load("c"), c));
  EXPECT_TRUE(bitwise_equal(r.load("d"), d));
  EXPECT_TRUE(bitwise_equal(r.load("s"), s.contiguous()));
  EXPECT_EQ(r.load("e").shape(), (Shape{0, 3}));
  expect_error([&] { r.load("nope"); }, {"[safetensors]", path, "\"nope\""});
  // The data section starts 8-byte aligned, as the reference writer pads it.
  EXPECT_EQ(r.entry("a").begin % 4, 0u);
}

TEST(Safetensors, HalfAndBfloat16) {
  TempDir dir;
  std::string path = dir.file("h.safetensors");
  Tensor x = random({1000}, DType::f32, 6);
  save_safetensors(path, {{"h", x}, {"b", x}}, {},
                   {{"h", safetensors::StDType::F16}, {"b", safetensors::StDType::BF16}});
  SafetensorsReader r(path);
  EXPECT_EQ(r.entry("h").dtype, safetensors::StDType::F16);
  EXPECT_TRUE(all_close(r.load("h"), x, 1e-3));  // 11-bit mantissa
  EXPECT_TRUE(all_close(r.load("b"), x, 1e-2));  // 8-bit mantissa
  // Exact values survive; rounding is to nearest even; specials are kept.
  for (float v : {0.f, -0.f, 1.f, -2.5f, 65504.f, 6.103515625e-05f, 5.9604645e-08f})
    EXPECT_EQ(half_to_float(float_to_half(v)), v) << v;
  EXPECT_EQ(half_to_float(float_to_half(1e6f)), INFINITY);
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(NAN))));
  EXPECT_EQ(half_to_float(float_to_half(1.0f + 1.0f / 2048)), 1.0f);  // tie goes to even
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(3.0f)), 3.0f);
}

TEST(Safetensors, EachCorruptionHasItsOwnError) {
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  expect_load_error("abc", {"too short"});
  {
    std::string f = raw_file("{" + ok_entry + "}", 8);
    f[0] = static_cast<char>(0xFF);  // header length far beyond the file
    expect_load_error(f, {"header length", "beyond the file"});
  }
  expect_load_error(raw_file("{\"t\": {\"dtype\": ", 8), {"malformed JSON"});
  expect_load_error(raw_file(R"({"t":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", 8),
                    {"unknown dtype", "\"t\"", "Q7"});
  expect_load_error(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("u":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                             12),
                    {"overlaps", "\"u\"", "\"t\""});
  expect_load_error(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4),
                    {"outside the data", "\"t\""});
  expect_load_error(raw_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                    {"do not match shape", "\"t\""});
  expect_load_error(raw_file("{" + ok_entry + "," + ok_entry + "}", 8),
                    {"duplicate name", "\"t\""});
  expect_load_error(raw_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8),
                    {"unexpected field", "\"t\""});
  expect_load_error(raw_file(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                    {"non-negative", "\"t\""});
  expect_load_error(raw_file(R"({"__metadata__":{"k":3}})", 0), {"__metadata__"});
  expect_load_error(raw_file("[1, 2]", 0), {"not a JSON object"});
  expect_error([] { SafetensorsReader r("/nonexistent/x.safetensors"); },
               {"cannot open", "/nonexistent/x.safetensors"});
}

TEST(Safetensors, TruncatedFilesAreRefusedAtEveryLength) {
  TempDir dir;
  std::string good = dir.file("good.safetensors");
  save_safetensors(good, {{"w", random({4, 4}, DType::f32, 7)}, {"b", random({4}, DType::f32, 8)}});
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::string path = dir.file("t.safetensors");
    write_bytes(path, bytes.substr(0, len));
    EXPECT_THROW(SafetensorsReader r(path), Error) << "length " << len;
  }
}

TEST(Safetensors, WriterRefusesBadInputAndLeavesTheOldFile) {
  TempDir dir;
  std::string path = dir.file("w.safetensors");
  Tensor x = random({3}, DType::f32, 9);
  save_safetensors(path, {{"x", x}});
  expect_error([&] { save_safetensors(path, {{"x", x}, {"x", x}}); }, {"duplicate name", "\"x\""});
  expect_error(
      [&] {
        save_safetensors(path, {{"i", Tensor::zeros({2}, DType::i64)}}, {},
                         {{"i", safetensors::StDType::F16}});
      },
      {"cannot be stored as F16", "\"i\""});
  SafetensorsReader r(path);  // still the first, complete file
  EXPECT_TRUE(bitwise_equal(r.load("x"), x));
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos);
}
