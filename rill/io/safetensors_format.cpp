// The safetensors header: parsing with strict validation (offsets, sizes, dtypes, overlaps).
#include "rill/io/safetensors_format.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "rill/core/error.h"

namespace rill::safetensors {

using nlohmann::json;

size_t dtype_size(StDType d) {
  switch (d) {
    case StDType::F64:
    case StDType::I64:
      return 8;
    case StDType::F32:
    case StDType::I32:
      return 4;
    case StDType::BF16:
    case StDType::F16:
      return 2;
  }
  return 0;
}

const char* dtype_name(StDType d) {
  switch (d) {
    case StDType::F32:
      return "F32";
    case StDType::F64:
      return "F64";
    case StDType::BF16:
      return "BF16";
    case StDType::F16:
      return "F16";
    case StDType::I32:
      return "I32";
    case StDType::I64:
      return "I64";
  }
  return "?";
}

std::optional<StDType> parse_dtype(const std::string& s) {
  for (StDType d :
       {StDType::F32, StDType::F64, StDType::BF16, StDType::F16, StDType::I32, StDType::I64})
    if (s == dtype_name(d)) return d;
  return std::nullopt;
}

namespace {

// nlohmann's parser keeps the last of two equal keys silently; this callback refuses them.
struct DuplicateKeyGuard {
  std::vector<std::set<std::string>> open_objects;
  const std::string* source;
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second)
          fail("[safetensors] {}: duplicate name \"{}\" in the header{}", *source, key,
               depth > 1 ? " (inside an entry)" : "");
        break;
      }
      default:
        break;
    }
    return true;
  }
};

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint64_t as_u64(const json& v, const std::string& source, const std::string& name,
                const char* field) {
  RILL_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0),
             "[safetensors] {}: tensor \"{}\": {} must hold non-negative integers, got {}", source,
             name, field, v.dump());
  return v.get<uint64_t>();
}

Entry parse_entry(const std::string& name, const json& v, const std::string& source) {
  RILL_CHECK(!name.empty(), "[safetensors] {}: a tensor has an empty name", source);
  RILL_CHECK(v.is_object(), "[safetensors] {}: tensor \"{}\": entry is not an object", source,
             name);
  for (const auto& [key, _] : v.items())
    RILL_CHECK(key == "dtype" || key == "shape" || key == "data_offsets",
               "[safetensors] {}: tensor \"{}\": unexpected field \"{}\"", source, name, key);
  RILL_CHECK(v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
             "[safetensors] {}: tensor \"{}\": needs dtype, shape and data_offsets", source, name);
  Entry e;
  e.name = name;
  const json& dt = v["dtype"];
  RILL_CHECK(dt.is_string(), "[safetensors] {}: tensor \"{}\": dtype is not a string", source,
             name);
  auto d = parse_dtype(dt.get<std::string>());
  RILL_CHECK(d.has_value(),
             "[safetensors] {}: tensor \"{}\": unknown dtype \"{}\" (rill reads F32, F64, BF16, "
             "F16, I32, I64)",
             source, name, dt.get<std::string>());
  e.dtype = *d;
  RILL_CHECK(v["shape"].is_array(), "[safetensors] {}: tensor \"{}\": shape is not an array",
             source, name);
  uint64_t count = 1;
  for (const json& s : v["shape"]) {
    uint64_t n = as_u64(s, source, name, "shape");
    RILL_CHECK(n <= static_cast<uint64_t>(INT64_MAX) && !__builtin_mul_overflow(count, n, &count),
               "[safetensors] {}: tensor \"{}\": shape {} overflows", source, name,
               v["shape"].dump());
    e.shape.push_back(static_cast<int64_t>(n));
  }
  const json& off = v["data_offsets"];
  RILL_CHECK(off.is_array() && off.size() == 2,
             "[safetensors] {}: tensor \"{}\": data_offsets must be [begin, end], got {}", source,
             name, off.dump());
  e.begin = as_u64(off[0], source, name, "data_offsets");
  e.end = as_u64(off[1], source, name, "data_offsets");
  RILL_CHECK(e.begin <= e.end,
             "[safetensors] {}: tensor \"{}\": data_offsets [{}, {}) run backwards", source, name,
             e.begin, e.end);
  uint64_t bytes = 0;
  RILL_CHECK(
      !__builtin_mul_overflow(count, dtype_size(e.dtype), &bytes) && bytes == e.end - e.begin,
      "[safetensors] {}: tensor \"{}\": {} bytes at [{}, {}) do not match shape {} of {} "
      "({} bytes)",
      source, name, e.end - e.begin, e.begin, e.end, v["shape"].dump(), dtype_name(e.dtype), bytes);
  return e;
}

}  // namespace

Header parse_header(const uint8_t* bytes, size_t size, const std::string& source) {
  RILL_CHECK(size >= 8,
             "[safetensors] {}: file is {} bytes, too short for the 8-byte header length", source,
             size);
  const uint64_t n = read_u64_le(bytes);
  RILL_CHECK(n <= size - 8, "[safetensors] {}: header length {} goes beyond the file ({} bytes)",
             source, n, size);
  RILL_CHECK(n <= kMaxHeaderBytes, "[safetensors] {}: header length {} exceeds the {} byte limit",
             source, n, kMaxHeaderBytes);
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  json header;
  try {
    DuplicateKeyGuard guard{{}, &source};
    header = json::parse(text, text + n, std::ref(guard));
  } catch (const json::exception& e) {
    fail("[safetensors] {}: malformed JSON header: {}", source, e.what());
  }
  RILL_CHECK(header.is_object(), "[safetensors] {}: the header is not a JSON object", source);

  Header h;
  h.data_start = 8 + n;
  h.data_size = size - h.data_start;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      RILL_CHECK(value.is_object(), "[safetensors] {}: __metadata__ is not an object", source);
      for (const auto& [k, v] : value.items()) {
        RILL_CHECK(v.is_string(), "[safetensors] {}: __metadata__ value \"{}\" is not a string",
                   source, k);
        h.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    Entry e = parse_entry(name, value, source);
    RILL_CHECK(e.end <= h.data_size,
               "[safetensors] {}: tensor \"{}\": data_offsets [{}, {}) fall outside the data "
               "({} bytes)",
               source, name, e.begin, e.end, h.data_size);
    h.entries.push_back(std::move(e));
  }
  // Overlaps: sorted by start, each (non-empty) tensor must begin where the previous ended or
  // later.
  std::vector<const Entry*> by_offset;
  for (const Entry& e : h.entries)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    RILL_CHECK(by_offset[i]->begin >= by_offset[i - 1]->end,
               "[safetensors] {}: tensor \"{}\" [{}, {}) overlaps tensor \"{}\" [{}, {})", source,
               by_offset[i]->name, by_offset[i]->begin, by_offset[i]->end, by_offset[i - 1]->name,
               by_offset[i - 1]->begin, by_offset[i - 1]->end);
  return h;
}

std::string serialize_header(const std::vector<Entry>& entries,
                             const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (const Entry& e : entries)
    header[e.name] = {
        {"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned
  std::string out(8, '\0');
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + text;
}

}  // namespace rill::safetensors
