// Byte and word tokenizers; the word vocabulary file format and its validation.
#include "rill/data/tokenizer.h"

#include <algorithm>
#include <fstream>

#include "rill/core/error.h"
#include "rill/io/atomic_file.h"

namespace rill::data {

const char* tokenizer_kind_name(TokenizerKind kind) {
  return kind == TokenizerKind::bytes ? "bytes" : "words";
}

TokenizerKind parse_tokenizer_kind(std::string_view name) {
  if (name == "bytes") return TokenizerKind::bytes;
  if (name == "words") return TokenizerKind::words;
  fail("[data] unknown tokenizer \"{}\" (expected bytes or words)", name);
}

// ---- bytes ----

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids) const {
  std::string s(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    RILL_CHECK(ids[i] >= 0 && ids[i] < 256, "[data] byte token id {} at {} is outside [0, 256)",
               ids[i], i);
    s[i] = static_cast<char>(ids[i]);
  }
  return s;
}

std::string ByteTokenizer::decode_token(int32_t id, int32_t) const {
  RILL_CHECK(id >= 0 && id < 256, "[data] byte token id {} is outside [0, 256)", id);
  return std::string(1, static_cast<char>(id));
}

// ---- words ----

namespace {
const char* kUnkText = "<unk>";
const char* kEolText = "<eol>";
}  // namespace

void WordTokenizer::index() {
  ids_.clear();
  ids_.reserve(words_.size());
  for (size_t i = 0; i < words_.size(); ++i) ids_.emplace(words_[i], static_cast<int32_t>(i));
}

WordTokenizer WordTokenizer::build(std::string_view text, int64_t max_vocab) {
  RILL_CHECK(max_vocab >= 2, "[data] word vocabulary cap {} is below 2 (<unk> and <eol>)",
             max_vocab);
  std::unordered_map<std::string, uint64_t, Hash, std::equal_to<>> counts;
  uint64_t eol = 0;
  split_words(text, [&](std::string_view w) {
    if (w == "\n") {
      ++eol;
      return;
    }
    auto it = counts.find(w);
    if (it == counts.end())
      counts.emplace(std::string(w), 1);
    else
      ++it->second;
  });
  std::vector<std::pair<std::string, uint64_t>> sorted(counts.begin(), counts.end());
  // Most frequent first; equal counts in byte order, so the vocabulary never depends on hashing.
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  size_t keep = std::min(sorted.size(), static_cast<size_t>(max_vocab - 2));
  WordTokenizer t;
  uint64_t unk = 0;
  for (size_t i = keep; i < sorted.size(); ++i) unk += sorted[i].second;
  t.words_ = {kUnkText, kEolText};
  t.counts_ = {unk, eol};
  for (size_t i = 0; i < keep; ++i) {
    t.words_.push_back(std::move(sorted[i].first));
    t.counts_.push_back(sorted[i].second);
  }
  t.index();
  return t;
}

WordTokenizer WordTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  RILL_CHECK(in.good(), "[data] cannot open word vocabulary {}", path);
  WordTokenizer t;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    size_t tab = line.find('\t');
    RILL_CHECK(tab != std::string::npos && tab > 0,
               "[data] {} line {}: expected \"token<TAB>count\"", path, line_no);
    std::string word = line.substr(0, tab);
    std::string count_text = line.substr(tab + 1);
    uint64_t count = 0;
    RILL_CHECK(
        !count_text.empty() && count_text.find_first_not_of("0123456789") == std::string::npos,
        "[data] {} line {}: count \"{}\" is not a number", path, line_no, count_text);
    count = std::stoull(count_text);
    if (line_no == 1)
      RILL_CHECK(word == kUnkText, "[data] {} line 1 must be {}, got \"{}\"", path, kUnkText, word);
    if (line_no == 2)
      RILL_CHECK(word == kEolText, "[data] {} line 2 must be {}, got \"{}\"", path, kEolText, word);
    t.words_.push_back(std::move(word));
    t.counts_.push_back(count);
  }
  RILL_CHECK(t.words_.size() >= 2, "[data] {} has {} entries: it needs at least <unk> and <eol>",
             path, t.words_.size());
  t.index();
  RILL_CHECK(t.ids_.size() == t.words_.size(), "[data] {} lists a word twice", path);
  return t;
}

void WordTokenizer::save(const std::string& path) const {
  std::string text;
  for (size_t i = 0; i < words_.size(); ++i)
    text += words_[i] + "\t" + std::to_string(counts_[i]) + "\n";
  write_file_atomically(path, [&](int fd) { write_all(fd, text.data(), text.size(), path); });
}

const std::string& WordTokenizer::word(int32_t id) const {
  RILL_CHECK(id >= 0 && static_cast<size_t>(id) < words_.size(),
             "[data] word token id {} is outside [0, {})", id, words_.size());
  return words_[static_cast<size_t>(id)];
}

int32_t WordTokenizer::id(std::string_view word) const {
  auto it = ids_.find(word);
  return it == ids_.end() ? kUnk : it->second;
}

std::vector<int32_t> WordTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  split_words(text, [&](std::string_view w) { ids.push_back(w == "\n" ? kEol : id(w)); });
  return ids;
}

std::string WordTokenizer::decode_token(int32_t id, int32_t previous) const {
  if (id == kEol) return "\n";
  const std::string& w = word(id);
  return previous < 0 || previous == kEol ? w : " " + w;
}

std::string WordTokenizer::decode(std::span<const int32_t> ids) const {
  std::string s;
  int32_t previous = -1;
  for (int32_t id : ids) {
    s += decode_token(id, previous);
    previous = id;
  }
  return s;
}

std::unique_ptr<Tokenizer> make_tokenizer(TokenizerKind kind, const std::string& vocab_path) {
  if (kind == TokenizerKind::bytes) return std::make_unique<ByteTokenizer>();
  return std::make_unique<WordTokenizer>(WordTokenizer::load(vocab_path));
}

}  // namespace rill::data
