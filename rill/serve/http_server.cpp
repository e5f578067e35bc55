// `rill serve`'s HTTP side (server.h): routes, request contexts and server-sent events.
//
// Why cpp-httplib (Debian's libcpp-httplib-dev): a small, widely used library (llama.cpp's
// server is built on it) with what this server needs and nothing more: a thread pool we size,
// chunked responses driven by a callback (server-sent events, one per token), regex routes, and
// payload limits. Boost.Beast or Drogon would bring an event loop and far more code for a server
// whose work is done by one engine thread anyway.
//
// Threads: httplib runs each request on a pool thread; requests hand their work to the engine
// thread (engine.h) and wait on a Run (below) for tokens. A streaming request holds its pool
// thread until its last event, so the pool is sized for the sessions that stream at once.
#include <fmt/format.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "rill/data/tokenizer.h"
#include "rill/serve/engine.h"
#include "rill/serve/page.h"
#include "rill/serve/prefix_cache.h"
#include "rill/serve/server.h"
#include "rill/serve/session_store.h"
#include "rill/tasks/language_modeling.h"
#include "rill/train/checkpoint.h"

namespace rill::serve {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t resident_set_bytes() {
  std::ifstream f("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * int64_t(::sysconf(_SC_PAGESIZE));
}

namespace {

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The length of the longest prefix of s that does not end inside a UTF-8 character: text is
// streamed up to there, so that a character split over two byte tokens arrives whole.
size_t utf8_complete(const std::string& s) {
  size_t n = s.size(), i = n;
  for (int back = 0; back < 4 && i > 0; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {  // a lead byte (or ASCII) at i - 1
      const size_t len = c < 0x80         ? 1
                         : (c >> 5) == 6  ? 2
                         : (c >> 4) == 14 ? 3
                         : (c >> 3) == 30 ? 4
                                          : 1;
      return (i - 1) + len <= n ? n : i - 1;
    }
    --i;
  }
  return n;
}

// One request's generation, shared by the request's thread and the engine's callbacks.
struct Run {
  std::mutex mu;
  std::condition_variable cv;
  const data::Tokenizer* tok = nullptr;
  int32_t previous = -1;           // the token before the next one (for decode_token)
  std::string stop;                // ends generation once the text contains it
  std::vector<int64_t> generated;  // every sampled token
  std::string text;                // their text, cut before `stop` when it appeared
  size_t sent = 0;                 // bytes of text already sent
  bool stopped = false, prefilled = false, done = false;
  std::string reason, error;
  std::atomic<bool> cancelled{false};  // the client went away
  Clock::time_point start = Clock::now(), first_token;

  bool on_token(int64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    if (generated.empty()) first_token = Clock::now();
    generated.push_back(id);
    const size_t before = text.size();
    text += tok->decode_token(int32_t(id), previous);
    previous = int32_t(id);
    if (!stop.empty()) {
      const size_t from = before >= stop.size() ? before - stop.size() + 1 : 0;
      const size_t at = text.find(stop, from);
      if (at != std::string::npos) text.resize(at), stopped = true;
    }
    cv.notify_all();
    return !stopped && !cancelled;
  }
  void on_done(const std::string& why, const std::string& err) {
    std::lock_guard<std::mutex> lock(mu);
    reason = stopped ? "stop" : why;
    error = err;
    done = true;
    cv.notify_all();
  }
  // New text to send (held back while it could still turn into `stop`, or ends mid-character);
  // everything once done.
  std::string take_text() {
    size_t end = text.size();
    if (!done) {
      if (!stop.empty()) end = end >= stop.size() - 1 ? end - (stop.size() - 1) : 0;
      end = std::min(end, utf8_complete(text.substr(0, end)));
    }
    if (end <= sent) return {};
    std::string out = text.substr(sent, end - sent);
    sent = end;
    return out;
  }
  void wait_done() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  double tokens_per_s() const {
    if (generated.size() < 2) return 0;
    const double s = std::chrono::duration<double>(Clock::now() - first_token).count();
    return s > 0 ? double(generated.size() - 1) / s : 0;
  }
};

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(error_json(status, message), "application/json");
}

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

// Answers with the server-sent events of a run: event(piece) for each new piece of text, then,
// once the run is over, last() (called once: it may save a session) and the end of the
// response. A client that goes away first cancels the run, and on_gone() runs once it ended.
void stream_run(httplib::Response& res, const std::shared_ptr<Run>& run,
                std::function<std::string(const std::string&)> event,
                std::function<std::string()> last, std::function<void()> on_gone) {
  auto finalized = std::make_shared<std::atomic<bool>>(false);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [run, event, last, finalized](size_t, httplib::DataSink& sink) {
        std::unique_lock<std::mutex> lock(run->mu);
        run->cv.wait_for(lock, std::chrono::milliseconds(200),
                         [&] { return run->done || run->text.size() > run->sent; });
        const std::string piece = run->take_text();
        const bool done = run->done && run->sent == run->text.size();
        lock.unlock();
        if (!piece.empty()) {
          const std::string ev = event(piece);
          if (!sink.write(ev.data(), ev.size())) return false;
        }
        if (!done) return true;
        if (finalized->exchange(true)) return false;
        const std::string ev = last();
        sink.write(ev.data(), ev.size());
        sink.done();
        return true;
      },
      [run, on_gone, finalized](bool) {  // the response is over; the client may be gone
        if (finalized->exchange(true)) return;
        run->cancelled = true;
        run->wait_done();
        on_gone();
      });
}

}  // namespace

struct Server::Impl {
  ServerOptions opt;
  LoadedModel loaded;
  std::unique_ptr<data::Tokenizer> tok;
  ContextPolicy policy;
  std::string model_name;
  std::unique_ptr<SessionStore> store;
  PrefixCache cache;
  std::unique_ptr<Engine> engine;
  httplib::Server http;
  std::atomic<int> bound_port{0};
  std::atomic<int> listen_socket{-1};
  std::atomic<int64_t> requests{0}, client_errors{0};
  const Clock::time_point started = Clock::now();

  explicit Impl(const ServerOptions& o) : opt(o), cache(o.cache_entries, o.cache_mb << 20) {
    RILL_CHECK(opt.max_sessions > 0 && opt.memory_cap_mb >= 0 && opt.max_prompt_tokens > 0 &&
                   opt.http_threads > 0,
               "[serve] --max-sessions, --max-prompt-tokens and the thread count must be "
               "positive, the memory cap not negative");
    loaded = load_model(opt.checkpoint);
    loaded.model->eval();
    // Prompts go through the parallel form and tokens through the stepper: both read the weights
    // in the stepper's format, so that a state does not depend on which form read a token.
    const WeightFormat format = weight_format_from_name(opt.weights);
    round_weights_to(*loaded.model, format);
    RILL_CHECK(loaded.model->io().vocab > 0,
               "[serve] {} is not a language model (it reads {} features, not tokens)",
               opt.checkpoint, loaded.model->io().in_features);
    tok = trained_tokenizer(loaded.info.task, opt.data_dir);
    policy = ContextPolicy{loaded.info.task.value("trained_context", int64_t(0))};
    model_name = std::filesystem::path(opt.checkpoint).parent_path().filename().string();
    if (model_name.empty()) model_name = "rill";
    store = std::make_unique<SessionStore>(SessionStoreOptions{
        opt.sessions_dir, loaded.info.weights_sha256, opt.max_sessions, opt.memory_cap_mb << 20});
    engine = std::make_unique<Engine>(
        *loaded.model, format, policy,
        EngineOptions{opt.prefill_chunk, opt.max_batch, opt.threads, opt.step_threads});
    routes();
  }

  std::vector<int64_t> encode(const std::string& text) const {
    std::vector<int32_t> ids = tok->encode(text);
    if (int64_t(ids.size()) > opt.max_prompt_tokens)
      throw ApiError(413, fmt::format("the prompt is {} tokens; this server reads at most {} per "
                                      "request",
                                      ids.size(), opt.max_prompt_tokens));
    return {ids.begin(), ids.end()};
  }

  SamplerOptions sampler(const Generation& g) const {
    SamplerOptions s;
    s.temperature = g.temperature, s.top_p = g.top_p, s.top_k = g.top_k;
    return s;
  }

  static uint64_t random_seed() {
    static std::mutex mu;
    static std::mt19937_64 rng(std::random_device{}());
    std::lock_guard<std::mutex> lock(mu);
    return rng();
  }

  // Starts the engine on `stream`: read `prefill`, then sample g.max_tokens.
  std::shared_ptr<Run> start(Stream* stream, std::vector<int64_t> prefill, const Generation& g,
                             std::function<void(const Stream&)> on_prefilled = {}) {
    auto run = std::make_shared<Run>();
    run->tok = tok.get();
    run->stop = g.stop;
    run->previous = int32_t(prefill.empty() ? stream->pending : prefill.back());
    auto job = std::make_shared<Job>();
    job->stream = stream;
    job->prefill = std::move(prefill);
    job->max_tokens = g.max_tokens;
    job->sampler = sampler(g);
    job->on_prefilled = [run, on_prefilled](const Stream& s) {
      if (on_prefilled) on_prefilled(s);
      std::lock_guard<std::mutex> lock(run->mu);
      run->prefilled = true;
    };
    job->on_token = [run](int64_t id) { return run->on_token(id); };
    job->on_done = [run](const std::string& r, const std::string& e) { run->on_done(r, e); };
    engine->submit(job);
    return run;
  }

  // A fresh stream that will read `tokens` (its first token pending, the rest to prefill), or
  // the longest cached prefix of them and the rest.
  std::pair<Stream, std::vector<int64_t>> stream_for(const std::vector<int64_t>& tokens, bool reuse,
                                                     int64_t* reused) {
    *reused = 0;
    if (reuse)
      if (auto hit = cache.lookup(tokens)) {
        *reused = hit->matched;
        return {std::move(hit->stream),
                std::vector<int64_t>(tokens.begin() + hit->matched, tokens.end())};
      }
    Stream s;
    s.state = loaded.model->init_state(1);
    s.pending = tokens.front();
    return {std::move(s), std::vector<int64_t>(tokens.begin() + 1, tokens.end())};
  }

  json session_json(const SessionSummary& s) const {
    return {{"id", s.id},
            {"tokens", s.tokens},
            {"state_bytes", s.state_bytes},
            {"resident", s.resident},
            {"busy", s.busy}};
  }

  json stats_json() const {
    const PrefixCacheStats c = cache.stats();
    const EngineStats e = engine->stats();
    const ModelInfo info = loaded.model->info(0);
    return {{"model", model_name},
            {"parameters", info.parameters},
            {"state_bytes_per_session", info.state_bytes},
            {"constant_state", info.constant_state},
            {"trained_context", policy.trained_context},
            {"sessions", store->size()},
            {"resident_state_bytes", store->resident_bytes()},
            {"rss_bytes", resident_set_bytes()},
            {"uptime_s", std::chrono::duration<double>(Clock::now() - started).count()},
            {"requests", requests.load()},
            {"client_errors", client_errors.load()},
            {"engine",
             {{"batched", e.steps > 0 ? json(e.mean_batch()) : json(0)},
              {"steps", e.steps},
              {"tokens_generated", e.tokens_generated},
              {"tokens_prefilled", e.tokens_prefilled},
              {"generating", e.generating},
              {"waiting", e.waiting}}},
            {"prefix_cache",
             {{"entries", c.entries},
              {"bytes", c.bytes},
              {"lookups", c.lookups},
              {"hits", c.hits},
              {"hit_rate", c.hit_rate()},
              {"tokens_requested", c.tokens_requested},
              {"tokens_reused", c.tokens_reused}}}};
  }

  // ---- sessions ----

  void create_session(const httplib::Request& req, httplib::Response& res) {
    const CreateSessionRequest r = parse_create_session_request(req.body, opt.limits);
    const std::vector<int64_t> tokens = encode(r.prompt);
    Stream stream;
    int64_t reused = 0;
    if (tokens.empty()) {  // nothing read yet: the first continue brings a prompt
      stream.state = loaded.model->init_state(1);
    } else {
      auto [s, rest] = stream_for(tokens, true, &reused);
      stream = std::move(s);
      Generation g;
      g.max_tokens = 0;
      auto run = start(&stream, std::move(rest), g,
                       [this, tokens](const Stream& st) { cache.insert(tokens, st); });
      run->wait_done();
      if (run->reason == "error") throw std::runtime_error(run->error);
      if (run->reason == "shutdown") throw ApiError(503, "the server is shutting down");
    }
    stream.generator = Generator(r.seed ? *r.seed : random_seed());
    const std::string id = store->create(std::move(stream), int64_t(tokens.size()));
    json j = session_json(store->summary(id));
    j["prefix_reused_tokens"] = reused;
    send_json(res, 201, j);
  }

  // Ends a session's request: saves it (or drops what a failed request left) and says whether
  // the client may count on it.
  bool finish_session(const std::shared_ptr<Session>& s, Run& run, int64_t prompt_tokens) {
    std::lock_guard<std::mutex> lock(run.mu);
    const bool failed = run.reason == "error" || !run.prefilled;
    if (failed) {
      store->release(s, SessionStore::Outcome::discarded);
      return false;
    }
    s->tokens += prompt_tokens + int64_t(run.generated.size());
    try {
      store->release(s, SessionStore::Outcome::saved);
    } catch (const std::exception& e) {
      run.error = fmt::format("the session could not be saved: {}", e.what());
      return false;
    }
    return true;
  }

  void continue_session(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const ContinueRequest r = parse_continue_request(req.body, opt.limits);
    std::vector<int64_t> tokens = encode(r.prompt);
    const int64_t prompt_tokens = int64_t(tokens.size());
    std::shared_ptr<Session> s = store->acquire(id);
    std::shared_ptr<Run> run;
    try {
      if (s->stream.pending < 0) {  // a session that has read nothing yet
        if (tokens.empty()) throw ApiError(400, "the session has read nothing yet: give a prompt");
        s->stream.pending = tokens.front();
        tokens.erase(tokens.begin());
      }
      if (r.gen.seed) s->stream.generator = Generator(*r.gen.seed);
      run = start(&s->stream, tokens, r.gen);
    } catch (...) {
      store->release(s, SessionStore::Outcome::discarded);
      throw;
    }
    auto finished = [this, s, run, prompt_tokens](bool* saved) {
      *saved = finish_session(s, *run, prompt_tokens);
      std::lock_guard<std::mutex> lock(run->mu);
      json j = {{"type", run->reason == "error" ? "error" : "done"},
                {"finish_reason", run->reason},
                {"tokens", int64_t(run->generated.size())},
                {"session_tokens", s->tokens},
                {"state_bytes", s->state_bytes},
                {"tokens_per_s", run->tokens_per_s()},
                {"saved", *saved}};
      if (!run->error.empty()) j["error"] = run->error;
      return j;
    };
    if (!r.gen.stream) {
      run->wait_done();
      bool saved = false;
      json j = finished(&saved);
      std::lock_guard<std::mutex> lock(run->mu);
      j["text"] = run->text;
      j["token_ids"] = run->generated;
      j["id"] = id;
      send_json(res, run->reason == "error" ? 500 : 200, j);
      return;
    }
    stream_run(
        res, run,
        [](const std::string& piece) {
          return sse({{"type", "token"}, {"text", piece}});
        },
        [finished] {
          bool saved = false;
          return sse(finished(&saved));
        },
        [finished] {
          bool saved = false;
          finished(&saved);
        });
  }

  void fork_session(const httplib::Request& req, httplib::Response& res) {
    json j = session_json(store->summary(store->fork(req.matches[1])));
    j["forked_from"] = std::string(req.matches[1]);
    send_json(res, 201, j);
  }

  void download_state(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    store->summary(id);                                     // 404 when unknown
    std::ifstream f(store->path_of(id), std::ios::binary);  // current since its last request
    if (!f) throw ApiError(404, fmt::format("no session {}", id));
    std::stringstream ss;
    ss << f.rdbuf();
    res.set_header("Content-Disposition",
                   fmt::format("attachment; filename=\"{}.safetensors\"", id));
    res.set_content(ss.str(), "application/octet-stream");
  }

  void upload_state(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    check_session_id(id);
    // Parsed from a temporary beside the sessions ("*.tmp.*": removed at start if left over).
    const std::string tmp = (std::filesystem::path(opt.sessions_dir) /
                             fmt::format(".upload.{}.tmp.{:x}", id, random_seed()))
                                .string();
    {
      std::ofstream f(tmp, std::ios::binary);
      f.write(req.body.data(), std::streamsize(req.body.size()));
      if (!f) throw std::runtime_error("cannot write the upload to " + tmp);
    }
    Stream stream;
    int64_t tokens = 0;
    try {
      stream = store->read_stream(tmp, &tokens);
    } catch (...) {
      std::filesystem::remove(tmp);
      throw;
    }
    std::filesystem::remove(tmp);
    // The state must be one this model steps: its tensors (with their shapes, unless the state
    // grows with the context).
    const std::string why = stream.state.layout_difference(loaded.model->init_state(1),
                                                           loaded.model->info(0).constant_state);
    if (!why.empty()) throw ApiError(400, "the state does not fit the model served: " + why);
    if (stream.pending >= loaded.model->io().vocab)
      throw ApiError(400,
                     fmt::format("the state's pending token {} is outside the vocabulary of {}",
                                 stream.pending, loaded.model->io().vocab));
    store->create(std::move(stream), tokens, id);
    send_json(res, 201, session_json(store->summary(id)));
  }

  // ---- OpenAI-shaped completions ----

  void completions(const httplib::Request& req, httplib::Response& res) {
    const CompletionRequest r = parse_completion_request(req.body, opt.limits);
    const std::vector<int64_t> tokens = encode(r.prompt);
    if (tokens.empty()) throw ApiError(400, "the prompt encodes to no tokens");
    int64_t reused = 0;
    auto [s, rest] = stream_for(tokens, r.reuse_prefix, &reused);
    auto stream = std::make_shared<Stream>(std::move(s));
    stream->generator = Generator(r.gen.seed ? *r.gen.seed : random_seed());
    auto run = start(stream.get(), std::move(rest), r.gen,
                     [this, tokens](const Stream& st) { cache.insert(tokens, st); });
    const std::string cid = fmt::format("cmpl-{:016x}", random_seed());
    const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    const int64_t n_prompt = int64_t(tokens.size());
    // After generation the stream has read the prompt and the completion: cache that too, so
    // that the next turn of a conversation (prompt + completion + more) reads only the more.
    auto remember = [this, tokens, stream, run] {
      std::lock_guard<std::mutex> lock(run->mu);
      if (run->reason != "error" && run->prefilled && !run->generated.empty()) {
        std::vector<int64_t> all = tokens;
        all.insert(all.end(), run->generated.begin(), run->generated.end());
        cache.insert(all, *stream);
      }
    };
    auto usage = [n_prompt, reused](const Run& r) {
      return json{{"prompt_tokens", n_prompt},
                  {"completion_tokens", int64_t(r.generated.size())},
                  {"total_tokens", n_prompt + int64_t(r.generated.size())},
                  {"prompt_tokens_reused", reused}};
    };
    auto chunk = [this, cid, created](const std::string& text, const json& finish) {
      return json{
          {"id", cid},
          {"object", "text_completion"},
          {"created", created},
          {"model", model_name},
          {"choices",
           {{{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}}}}};
    };
    if (!r.gen.stream) {
      run->wait_done();
      remember();
      std::lock_guard<std::mutex> lock(run->mu);
      if (run->reason == "error") return send_error(res, 500, run->error);
      json j = chunk(run->text, run->reason);
      j["usage"] = usage(*run);
      return send_json(res, 200, j);
    }
    stream_run(
        res, run, [chunk](const std::string& piece) { return sse(chunk(piece, nullptr)); },
        [run, chunk, usage, remember] {
          remember();
          std::lock_guard<std::mutex> lock(run->mu);
          if (run->reason == "error")
            return sse(json::parse(error_json(500, run->error))) + "data: [DONE]\n\n";
          json last = chunk("", run->reason);
          last["usage"] = usage(*run);
          return sse(last) + "data: [DONE]\n\n";
        },
        remember);
  }

  // ---- routes ----

  template <class F>
  httplib::Server::Handler guarded(F f) {
    return [this, f](const httplib::Request& req, httplib::Response& res) {
      ++requests;
      try {
        (this->*f)(req, res);
      } catch (const ApiError& e) {
        ++client_errors;
        send_error(res, e.status, e.what());
      } catch (const std::exception& e) {
        send_error(res, 500, e.what());
      }
    };
  }

  void routes() {
    const std::string sid = R"(/v1/sessions/([A-Za-z0-9_-]{1,64}))";
    http.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(page_html(), "text/html; charset=utf-8");
    });
    http.Get("/v1/stats", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, stats_json());
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200,
                {{"object", "list"},
                 {"data", {{{"id", model_name}, {"object", "model"}, {"owned_by", "rill"}}}}});
    });
    http.Post("/v1/completions", guarded(&Impl::completions));
    http.Post("/v1/sessions", guarded(&Impl::create_session));
    http.Get("/v1/sessions", [this](const httplib::Request&, httplib::Response& res) {
      json list = json::array();
      for (const auto& s : store->list()) list.push_back(session_json(s));
      send_json(res, 200, {{"sessions", list}});
    });
    http.Get(sid, guarded(&Impl::get_session));
    http.Delete(sid, guarded(&Impl::delete_session));
    http.Post(sid + "/continue", guarded(&Impl::continue_session));
    http.Post(sid + "/fork", guarded(&Impl::fork_session));
    http.Get(sid + "/state", guarded(&Impl::download_state));
    http.Put(sid + "/state", guarded(&Impl::upload_state));
    http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.body.empty())
        res.set_content(
            error_json(res.status, fmt::format("{} {}: {}", req.method, req.path,
                                               res.status == 404 ? "no such route"
                                                                 : "the request was refused")),
            "application/json");
    });
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown error";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          send_error(res, 500, what);
        });
    http.set_payload_max_length(size_t(64) << 20);
    // A client that reads slowly (a loaded machine) is not cut off after httplib's 5 s.
    http.set_write_timeout(std::chrono::seconds(60));
    // The library listens with a backlog of 5 (compiled into Debian's build): hundreds of
    // clients connecting at once overflow it and see their connections reset. Keep the
    // listening socket, so that listen() can raise the backlog once bound.
    http.set_socket_options([this](socket_t sock) {
      httplib::default_socket_options(sock);
      listen_socket = sock;
    });
    const int threads = opt.http_threads;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  }

  void get_session(const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, session_json(store->summary(req.matches[1])));
  }

  void delete_session(const httplib::Request& req, httplib::Response& res) {
    store->remove(req.matches[1]);
    send_json(res, 200, {{"deleted", std::string(req.matches[1])}});
  }
};

Server::Server(const ServerOptions& options) : impl_(std::make_unique<Impl>(options)) {}

Server::~Server() { stop(); }

bool Server::listen() {
  const int port =
      impl_->opt.port == 0
          ? impl_->http.bind_to_any_port(impl_->opt.host)
          : (impl_->http.bind_to_port(impl_->opt.host, impl_->opt.port) ? impl_->opt.port : -1);
  if (port >= 0 && impl_->listen_socket >= 0) ::listen(impl_->listen_socket, SOMAXCONN);
  impl_->bound_port = port;
  if (port < 0) return false;
  return impl_->http.listen_after_bind();
}

void Server::stop() {
  impl_->engine->stop();  // ends every job: waiting requests save their sessions and answer
  impl_->http.stop();
}

int Server::port() const { return impl_->bound_port; }

void Server::wait_until_ready() const {
  while (impl_->bound_port == 0 || (impl_->bound_port > 0 && !impl_->http.is_running()))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

}  // namespace rill::serve
