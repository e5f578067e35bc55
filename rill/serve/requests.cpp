// Parsing and checking request bodies (requests.h). Every path ends in a value or an ApiError:
// nlohmann's parse and type errors and the strict field reader's errors become 400s.
#include "rill/serve/requests.h"

#include <nlohmann/json.hpp>

#include "rill/io/json_fields.h"

namespace rill::serve {

using nlohmann::json;

namespace {

json parse_object(std::string_view body, const char* what) {
  json j;
  try {
    j = body.empty() ? json::object() : json::parse(body);
  } catch (const json::exception& e) {
    throw ApiError(400, fmt::format("the body of {} is not valid JSON: {}", what, e.what()));
  }
  if (!j.is_object())
    throw ApiError(400, fmt::format("the body of {} must be a JSON object, got {}", what,
                                    j.dump(-1, ' ', true, json::error_handler_t::replace)));
  return j;
}

// Runs f, turning the field reader's errors (rill::Error) into 400s.
template <class F>
auto checked(F&& f) {
  try {
    return f();
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
}

std::string read_prompt(JsonFields& f, const Limits& limits, bool allow_list) {
  std::string prompt;
  if (const json* p = f.raw("prompt")) {
    if (p->is_string()) {
      prompt = p->get<std::string>();
    } else if (allow_list && p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      prompt = (*p)[0].get<std::string>();  // OpenAI's batch form, with one prompt
    } else {
      throw ApiError(400, allow_list ? "\"prompt\" must be a string (or a list of one string)"
                                     : "\"prompt\" must be a string");
    }
  }
  if (int64_t(prompt.size()) > limits.max_prompt_bytes)
    throw ApiError(413, fmt::format("the prompt has {} bytes; this server takes at most {}",
                                    prompt.size(), limits.max_prompt_bytes));
  return prompt;
}

std::optional<uint64_t> read_seed(JsonFields& f) {
  const json* s = f.raw("seed");
  if (!s || s->is_null()) return std::nullopt;
  if (!s->is_number_integer() || (!s->is_number_unsigned() && s->get<int64_t>() < 0))
    throw ApiError(400, fmt::format("\"seed\" must be a non-negative integer, got {}",
                                    s->dump(-1, ' ', true, json::error_handler_t::replace)));
  return s->get<uint64_t>();
}

void read_generation(JsonFields& f, Generation& g, const Limits& limits) {
  f.get("max_tokens", g.max_tokens);
  f.check("max_tokens", g.max_tokens, g.max_tokens >= 0, "0 or more");
  if (g.max_tokens > limits.max_tokens)
    throw ApiError(400, fmt::format("\"max_tokens\" is {}; this server generates at most {} per "
                                    "request",
                                    g.max_tokens, limits.max_tokens));
  if (const json* t = f.raw("temperature"); t && !t->is_null()) {
    if (!t->is_number()) throw ApiError(400, "\"temperature\" must be a number");
    g.temperature = t->get<double>();
  }
  f.check("temperature", g.temperature, g.temperature >= 0 && g.temperature <= 100, "in [0, 100]");
  if (const json* t = f.raw("top_p"); t && !t->is_null()) {
    if (!t->is_number()) throw ApiError(400, "\"top_p\" must be a number");
    g.top_p = t->get<double>();
  }
  f.check("top_p", g.top_p, g.top_p > 0 && g.top_p <= 1, "in (0, 1]");
  f.get("top_k", g.top_k);
  f.check("top_k", g.top_k, g.top_k >= 0, "0 (no cut) or more");
  g.seed = read_seed(f);
  if (const json* s = f.raw("stream"); s && !s->is_null()) {
    if (!s->is_boolean()) throw ApiError(400, "\"stream\" must be true or false");
    g.stream = s->get<bool>();
  }
  if (const json* s = f.raw("stop"); s && !s->is_null()) {
    if (s->is_string())
      g.stop = s->get<std::string>();
    else if (s->is_array() && s->size() == 1 && (*s)[0].is_string())
      g.stop = (*s)[0].get<std::string>();
    else if (!(s->is_array() && s->empty()))
      throw ApiError(400, "\"stop\" must be a string or a list of one string");
  }
}

// OpenAI fields rill does not implement: accepted only at their defaults.
void refuse_unsupported(const json& j) {
  auto is = [&](const char* k, const json& def) {
    return !j.contains(k) || j[k].is_null() || j[k] == def;
  };
  if (!is("n", 1)) throw ApiError(400, "\"n\" must be 1: rill returns one completion per request");
  if (!is("best_of", 1)) throw ApiError(400, "\"best_of\" must be 1");
  if (!is("echo", false)) throw ApiError(400, "\"echo\" is not supported");
  if (!is("logprobs", 0)) throw ApiError(400, "\"logprobs\" is not supported");
  if (!is("suffix", "")) throw ApiError(400, "\"suffix\" is not supported");
  if (!is("presence_penalty", 0) || !is("frequency_penalty", 0))
    throw ApiError(400, "presence and frequency penalties are not supported");
  if (!is("logit_bias", json::object())) throw ApiError(400, "\"logit_bias\" is not supported");
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body, const Limits& limits) {
  const json j = parse_object(body, "a completion request");
  return checked([&] {
    CompletionRequest r;
    JsonFields f(j, "the completion request");
    refuse_unsupported(j);
    r.prompt = read_prompt(f, limits, true);
    if (r.prompt.empty()) throw ApiError(400, "\"prompt\" is missing or empty");
    read_generation(f, r.gen, limits);
    f.get("reuse_prefix", r.reuse_prefix);
    return r;  // other keys (model, user, stream_options, ...) are ignored, as OpenAI clients send
               // them
  });
}

CreateSessionRequest parse_create_session_request(std::string_view body, const Limits& limits) {
  const json j = parse_object(body, "a session request");
  return checked([&] {
    CreateSessionRequest r;
    JsonFields f(j, "the session request");
    r.prompt = read_prompt(f, limits, false);
    r.seed = read_seed(f);
    f.finish();
    return r;
  });
}

ContinueRequest parse_continue_request(std::string_view body, const Limits& limits) {
  const json j = parse_object(body, "a continue request");
  return checked([&] {
    ContinueRequest r;
    r.gen.max_tokens = 64;
    r.gen.stream = true;
    JsonFields f(j, "the continue request");
    r.prompt = read_prompt(f, limits, false);
    read_generation(f, r.gen, limits);
    f.finish();
    return r;
  });
}

bool is_session_id(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-');
  return ok;
}

void check_session_id(std::string_view id) {
  if (!is_session_id(id))
    throw ApiError(400, "a session id is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'");
}

std::string error_json(int status, const std::string& message) {
  json e = {{"message", message},
            {"type", status >= 500 ? "server_error" : "invalid_request_error"},
            {"code", status}};
  return json{{"error", e}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace rill::serve
