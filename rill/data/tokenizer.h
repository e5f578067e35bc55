// Tokenizers for language modelling: bytes (the default: 256 ids, exact round trip of any input)
// and words (a vocabulary built from a training split, with <unk> and an end-of-line token).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rill::data {

enum class TokenizerKind { bytes, words };
const char* tokenizer_kind_name(TokenizerKind kind);  // "bytes" / "words"
TokenizerKind parse_tokenizer_kind(std::string_view name);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  // The text to append for `id` when streaming, given the token before it (-1 at the start):
  // concatenating decode_token(ids[i], ids[i-1]) over i gives exactly decode(ids).
  virtual std::string decode_token(int32_t id, int32_t previous = -1) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::string name() const = 0;
};

// Ids 0..255 are the bytes themselves, so decode(encode(s)) == s for any s (UTF-8 or not).
class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  std::string decode_token(int32_t id, int32_t previous = -1) const override;
  int64_t vocab_size() const override { return 256; }
  std::string name() const override { return "bytes"; }
};

// Word-level tokens. Splitting rule (split_words):
//  * '\n' is its own token, <eol> (so lines, verses and sentences survive);
//  * other whitespace (space, \t, \r, \v, \f) only separates tokens;
//  * a word is a run of ASCII letters, digits, '_' and bytes >= 0x80 (so UTF-8 letters stay
//    whole); an apostrophe between two word characters stays inside ("don't", "Lord's");
//  * any other byte is punctuation: a run of the same byte is one token ("...", "--", "``").
// Case is kept. Ids: 0 = <unk>, 1 = <eol>, then words by training count, descending, ties in
// byte order, up to the vocabulary cap (which counts <unk> and <eol>).
// decode joins tokens with one space and writes <eol> as "\n" with no space around it, so
// decode(encode(t)) is t with whitespace normalised that way and out-of-vocabulary words as
// "<unk>"; encode(decode(ids)) == ids for any ids free of <unk>.
class WordTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kUnk = 0;
  static constexpr int32_t kEol = 1;

  // Counts the words of `text` and keeps the most frequent max_vocab - 2 (max_vocab >= 2).
  static WordTokenizer build(std::string_view text, int64_t max_vocab);
  // vocab.txt: line i is "token<TAB>training count" for id i. Loading validates it.
  static WordTokenizer load(const std::string& path);
  void save(const std::string& path) const;  // atomic

  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  std::string decode_token(int32_t id, int32_t previous = -1) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(words_.size()); }
  std::string name() const override { return "words"; }

  const std::string& word(int32_t id) const;
  int32_t id(std::string_view word) const;  // kUnk when absent
  uint64_t count(int32_t id) const { return counts_.at(static_cast<size_t>(id)); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  WordTokenizer() = default;
  void index();
  std::vector<std::string> words_;
  std::vector<uint64_t> counts_;
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;
};

// Calls emit(token) for each token of `text` by the rule above; "\n" stands for <eol>.
template <class Emit>
void split_words(std::string_view text, Emit&& emit);

// The tokenizer a prepared corpus uses: bytes, or words loaded from vocab_path.
std::unique_ptr<Tokenizer> make_tokenizer(TokenizerKind kind, const std::string& vocab_path);

// ---- implementation of the template ----
namespace detail {
inline bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c >= 0x80;
}
inline bool is_space_byte(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}
}  // namespace detail

template <class Emit>
void split_words(std::string_view text, Emit&& emit) {
  size_t i = 0, n = text.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      emit(text.substr(i, 1));
      ++i;
    } else if (detail::is_space_byte(c)) {
      ++i;
    } else if (detail::is_word_byte(c)) {
      size_t j = i + 1;
      while (j < n) {
        unsigned char d = static_cast<unsigned char>(text[j]);
        if (detail::is_word_byte(d)) {
          ++j;
        } else if (d == '\'' && j + 1 < n &&
                   detail::is_word_byte(static_cast<unsigned char>(text[j + 1]))) {
          j += 2;
        } else {
          break;
        }
      }
      emit(text.substr(i, j - i));
      i = j;
    } else {
      size_t j = i + 1;
      while (j < n && text[j] == text[i]) ++j;
      emit(text.substr(i, j - i));
      i = j;
    }
  }
}

}  // namespace rill::data
