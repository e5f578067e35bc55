// The long-range recall corpus: byte-level text made by code, in which a model can only predict
// some bytes by remembering what it read thousands of bytes earlier, far beyond the reach of a
// sliding attention window. It is the corpus that tells a recurrent state that carries
// information across segments (Block-Recurrent Transformer, Transformer-XL memory) from one
// that does not; the language-modelling task scores those bytes on their own ("recall
// bits/byte", language_modeling.h).
//
// Every document is
//   === document ===\n                a header line marking the start
//   define NAME\n  (K lines)          K names (default 6) of 6 random letters A-Z, the K names
//                                     with distinct first letters
//   filler with references @NAME      made-up lowercase words from an order-1 Markov source
//                                     (a fixed vocabulary of a few hundred words drawn once
//                                     from the seed, each word followed by one of a few
//                                     successors from a sparse random table), separated by
//                                     spaces, with an occasional '.' and newline; the filler
//                                     has no uppercase letter and no '@'
// About 8-12 references per document (uniform in [min_refs, max_refs]), each naming one of the
// document's K names at random; the '@' of each lies at a byte distance drawn uniformly in
// [min_distance, max_distance] (default [1024, 8192]) from the end of the header (the offset
// just after the last define line), distinct references at least kMinGap bytes apart. The
// filler runs up to each reference; the gap left before the reference's exact offset, shorter
// than the next word, is padded with spaces. A reference is followed by a space. Documents are
// about 9-10 KB (the filler after the header ends at the first word end at or after a length
// drawn uniformly in [min_body, max_body], then a newline).
//
// The whole corpus is a pure function of the options: a fixed seed and an explicit PRNG
// (splitmix64, integer arithmetic only), so the same bytes come out on every machine, compiler
// and standard library. Change kLongRangeVersion whenever the output changes.
#pragma once
#include <cstdint>
#include <string>

namespace rill::data {

// Recorded as the corpus's "package version" in its manifest.
inline constexpr const char* kLongRangeVersion = "long-range generator 1 (splitmix64)";

struct LongRangeOptions {
  uint64_t seed = 0x6c6f6e6752616e67ull;  // "longRang"
  int64_t documents = 480;                // about 4.5 MB in all
  int names = 6;                          // K, at most 26 (distinct first letters)
  int name_length = 6;
  int64_t min_distance = 1024, max_distance = 8192;  // of a reference from the header's end
  int min_refs = 8, max_refs = 12;                   // per document
  int64_t min_body = 9000, max_body = 9800;          // filler bytes after the header
  int vocabulary = 320;                              // made-up lowercase words
};

// Fewest bytes between the offsets of two references of a document ('@' + name + space fit).
inline constexpr int64_t kMinGap = 16;

// The corpus text (documents one after the other). Throws on options that cannot be met (a
// distance range that the body cannot hold, more names than letters, too many references for
// the range).
std::string generate_long_range(const LongRangeOptions& options = {});

// The registered corpus "long-range": generate_long_range() with the default options.
std::string generate_long_range_corpus();

}  // namespace rill::data
