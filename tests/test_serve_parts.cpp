// The pieces of `rill serve` without HTTP: extending a stream in any chunks, batched stepping
// against streams stepped alone, the prefix cache, durable sessions, and the request parser.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "rill/autograd/grad_mode.h"
#include "rill/serve/batched_streams.h"
#include "rill/serve/prefix_cache.h"
#include "rill/serve/requests.h"
#include "rill/serve/session_store.h"
#include "rill/train/generate.h"
#include "tests/support/files.h"
#include "tests/support/testing.h"

using namespace rill;
using namespace rill::serve;
using namespace rill::testing;
using nlohmann::json;

namespace {

std::shared_ptr<SequenceModel> tiny_model(const std::string& dtype, const json& mixer) {
  auto m = make_model(
      {{"d_model", 32}, {"n_layers", 2}, {"mlp_hidden", 64}, {"dtype", dtype}, {"mixers", {mixer}}},
      {256, 0, 256}, 3);
  m->eval();
  return m;
}

const json kLinear = {{"type", "linear_attention"},
                      {"heads", 2},
                      {"chunk", 8},
                      {"decay", "input"},
                      {"local", "shift"}};
const json kSoftmax = {{"type", "softmax_attention"}, {"heads", 2}};

std::vector<int64_t> tokens(int64_t n, int64_t salt) {
  std::vector<int64_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = (i * 37 + salt * 11 + 5) % 256;
  return t;
}

// The logits of the stream's next step (not changing the stream).
Tensor next_logits(SequenceModel& m, const Stream& s) {
  State st = s.state.clone();
  return m.step(Tensor::from_vector<int64_t>({s.pending}, {1}), st);
}

}  // namespace

// A stream's state depends only on the tokens it read: extending in any chunks, starting on
// the whole history, and stepping the tokens one at a time (continue_stream's path, rebuilds
// included) all give the same next-token logits, with and without a context policy.
TEST(ServeParts, ExtendingAStreamIsExactInAnyChunks) {
  auto m = tiny_model("f64", kLinear);
  const std::vector<int64_t> all = tokens(61, 1);
  for (int64_t c : {0, 8, 13}) {
    const ContextPolicy policy{c};
    const Stream whole = start_stream(*m, all, 1, policy);
    // Stepping one token at a time, as generation does.
    Stream stepped = start_stream(*m, {all[0]}, 1, policy);
    for (size_t i = 1; i < all.size(); ++i) {
      prepare_step(*m, stepped, policy);
      m->step(Tensor::from_vector<int64_t>({stepped.pending}, {1}), stepped.state);
      stepped.pending = all[i];
    }
    EXPECT_EQ(stepped.recent, whole.recent) << "context " << c;
    EXPECT_EQ(stepped.rebuilds, whole.rebuilds) << "context " << c;
    if (c > 0) {
      EXPECT_GE(whole.rebuilds, 5);
    }
    EXPECT_TRUE(all_close(next_logits(*m, stepped), next_logits(*m, whole))) << "context " << c;
    for (std::vector<int64_t> cuts : {std::vector<int64_t>{1, 2, 3}, {7, 30}, {20, 21, 50}, {60}}) {
      Stream pieces =
          start_stream(*m, std::vector<int64_t>(all.begin(), all.begin() + cuts[0]), 1, policy);
      cuts.push_back(int64_t(all.size()));
      for (size_t k = 0; k + 1 < cuts.size(); ++k)
        extend_stream(*m, pieces,
                      std::vector<int64_t>(all.begin() + cuts[k], all.begin() + cuts[k + 1]),
                      policy);
      EXPECT_EQ(pieces.pending, whole.pending);
      EXPECT_EQ(pieces.recent, whole.recent) << "context " << c;
      EXPECT_TRUE(all_close(next_logits(*m, pieces), next_logits(*m, whole)))
          << "context " << c << " first cut " << cuts[0];
    }
  }
}

// Streams stepped together in one batch (joining and leaving at different moments, the batch
// growing and shrinking) sample exactly the tokens each samples alone, and leave with the state
// it would have: for a constant-state model (batched) and a K/V-cache model (each alone).
TEST(ServeParts, BatchedStreamsEqualStreamsSteppedAlone) {
  for (const json& mixer : {kLinear, kSoftmax}) {
    auto m = tiny_model("f32", mixer);
    const ContextPolicy policy{mixer == kLinear ? 24 : 0};
    SamplerOptions opt;
    opt.temperature = 0.9;
    const int n = 7;
    const std::vector<int64_t> lengths = {5, 40, 12, 3, 30, 9, 25};  // tokens to generate
    const std::vector<int64_t> joins = {0, 0, 2, 3, 3, 4, 4};  // the step each joins at: all 7 at 4
    std::vector<Stream> alone, together;
    std::vector<std::vector<int64_t>> want(n), got(n);
    for (int i = 0; i < n; ++i) {
      Stream s = start_stream(*m, tokens(10 + 3 * i, i), 100 + i, policy);
      together.push_back(s);
      together.back().state = s.state.clone();
      alone.push_back(s);
      want[i] = continue_stream(*m, alone[i], lengths[i], opt, policy);
    }
    BatchedStreams batch(*m, WeightFormat::f32, policy);
    EXPECT_EQ(batch.batched(), mixer == kLinear);
    std::map<int, int> who;  // handle -> stream
    int64_t widest = 0;
    for (int64_t t = 0; t < 80; ++t) {
      for (int i = 0; i < n; ++i)
        if (joins[i] == t) who[batch.join(&together[i], opt)] = i;
      widest = std::max(widest, batch.capacity());
      for (const auto& [handle, token] : batch.step()) {
        const int i = who.at(handle);
        got[i].push_back(token);
        if (int64_t(got[i].size()) == lengths[i]) batch.leave(handle);
      }
    }
    EXPECT_EQ(batch.members(), 0);
    if (mixer == kLinear) {
      EXPECT_EQ(widest, 8);
    }
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(got[i], want[i]) << mixer.dump() << " stream " << i;
      EXPECT_EQ(together[i].recent, alone[i].recent);
      EXPECT_TRUE(all_close(next_logits(*m, together[i]), next_logits(*m, alone[i]), 1e-4))
          << mixer.dump() << " stream " << i;
    }
  }
}

TEST(ServeParts, PrefixCacheFindsTheLongestPrefixAndStaysBounded) {
  auto m = tiny_model("f32", kLinear);
  const std::vector<int64_t> a = tokens(20, 1);
  std::vector<int64_t> ab = a;
  for (int64_t t : tokens(10, 2)) ab.push_back(t);
  const Stream sa = start_stream(*m, a, 1), sab = start_stream(*m, ab, 1);
  const int64_t entry = int64_t(sa.state.bytes()) + 8 * 40;
  PrefixCache cache(3, 10 * entry);
  EXPECT_FALSE(cache.lookup(a));
  cache.insert(a, sa);
  cache.insert(ab, sab);
  std::vector<int64_t> abc = ab;
  abc.push_back(7);
  auto hit = cache.lookup(abc);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->matched, int64_t(ab.size()));
  EXPECT_TRUE(all_close(next_logits(*m, hit->stream), next_logits(*m, sab)));
  // The copy is the caller's: changing it leaves the entry alone.
  extend_stream(*m, hit->stream, {1, 2, 3});
  EXPECT_TRUE(all_close(next_logits(*m, cache.lookup(ab)->stream), next_logits(*m, sab)));
  std::vector<int64_t> ax = a;
  ax.push_back(9);
  EXPECT_EQ(cache.lookup(ax)->matched, int64_t(a.size()));
  EXPECT_FALSE(cache.lookup(tokens(20, 5)));             // another start
  EXPECT_FALSE(cache.lookup({a.begin(), a.end() - 1}));  // shorter than every key
  PrefixCacheStats st = cache.stats();
  EXPECT_EQ(st.lookups, 6);
  EXPECT_EQ(st.hits, 3);
  EXPECT_EQ(st.entries, 2);
  // Bounded in entries (least recently used out) and in bytes.
  cache.insert(tokens(5, 3), sa);
  cache.insert(tokens(5, 4), sa);
  EXPECT_EQ(cache.stats().entries, 3);
  EXPECT_EQ(cache.lookup(abc)->matched, int64_t(a.size()));  // ab was the least recently used
  PrefixCache small(100, entry + entry / 2);
  small.insert(a, sa);
  small.insert(ab, sab);
  EXPECT_EQ(small.stats().entries, 1);
  EXPECT_LE(small.stats().bytes, entry + entry / 2);
}

TEST(ServeParts, SessionsAreDurableEvictedToDiskAndReadBack) {
  auto m = tiny_model("f32", kLinear);
  TempDir dir;
  const std::string sessions = dir / "sessions";
  const Stream s1 = start_stream(*m, tokens(12, 1), 1);
  const int64_t bytes = int64_t(s1.state.bytes());
  std::string a, b, c;
  {
    SessionStore store({sessions, "sha-1", 3, 2 * bytes});
    a = store.create(s1, 12);
    auto sa = store.acquire(a);
    expect_error([&] { store.acquire(a); }, {"in use"});
    extend_stream(*m, sa->stream, {5, 6, 7});
    sa->tokens += 3;
    store.release(sa, SessionStore::Outcome::saved);
    b = store.fork(a);
    c = store.create(start_stream(*m, tokens(4, 2), 2), 4);
    // Three sessions of one state each under a cap of two: the least recently used went to disk.
    EXPECT_EQ(store.resident_bytes(), 2 * bytes);
    try {
      store.create(s1, 1);
      ADD_FAILURE() << "a fourth session was accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 429);
    }
    // A request that fails part way leaves the session as of its last completed request.
    auto sc = store.acquire(c);
    extend_stream(*m, sc->stream, {1, 1, 1});
    store.release(sc, SessionStore::Outcome::discarded);
  }
  // A write cut short by kill -9 leaves a temporary, which the next start removes.
  write_raw(sessions + "/" + a + ".safetensors.tmp.999", "torn");
  SessionStore again({sessions, "sha-1", 3, int64_t(1) << 30});
  EXPECT_FALSE(std::filesystem::exists(sessions + "/" + a + ".safetensors.tmp.999"));
  ASSERT_EQ(again.size(), 3);
  Stream expect = start_stream(*m, tokens(12, 1), 1);
  extend_stream(*m, expect, {5, 6, 7});
  for (const std::string& id : {a, b}) {
    auto s = again.acquire(id);
    EXPECT_EQ(s->tokens, 15);
    EXPECT_TRUE(all_close(next_logits(*m, s->stream), next_logits(*m, expect)));
    again.release(s, SessionStore::Outcome::unchanged);
  }
  auto sc = again.acquire(c);
  EXPECT_TRUE(
      all_close(next_logits(*m, sc->stream), next_logits(*m, start_stream(*m, tokens(4, 2), 2))));
  again.release(sc, SessionStore::Outcome::unchanged);
  again.remove(b);
  EXPECT_FALSE(std::filesystem::exists(again.path_of(b)));
  try {
    again.acquire(b);
    ADD_FAILURE() << "a deleted session was found";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 404);
  }
  // A state saved for another model is refused by name.
  SessionStore other({dir / "other", "sha-2", 3, int64_t(1) << 30});
  try {
    other.read_stream(again.path_of(a), nullptr);
    ADD_FAILURE() << "a state of another model was read";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos);
  }
}

TEST(ServeParts, RequestParserRefusesBadBodiesWithTheirStatus) {
  const Limits limits;
  auto status_of = [&](const std::function<void()>& f) {
    try {
      f();
    } catch (const ApiError& e) {
      return e.status;
    }
    return 0;
  };
  auto completion = [&](const std::string& body) {
    return status_of([&] { parse_completion_request(body, limits); });
  };
  auto cont = [&](const std::string& body) {
    return status_of([&] { parse_continue_request(body, limits); });
  };
  EXPECT_EQ(completion(R"({"prompt": "hi"})"), 0);
  EXPECT_EQ(completion(R"({"prompt": ["hi"], "model": "x", "user": "u", "n": 1})"), 0);
  EXPECT_EQ(completion("{"), 400);
  EXPECT_EQ(completion("[1]"), 400);
  EXPECT_EQ(completion(R"({"prompt": 3})"), 400);
  EXPECT_EQ(completion(R"({"prompt": ""})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "max_tokens": -1})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "max_tokens": 1e9})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "max_tokens": 100000})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "temperature": "hot"})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "top_p": 0})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "seed": -4})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "n": 2})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "logprobs": 5})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "stream": "yes"})"), 400);
  EXPECT_EQ(completion(R"({"prompt": "a", "stop": ["x", "y"]})"), 400);
  EXPECT_EQ(completion(json{{"prompt", std::string(limits.max_prompt_bytes + 1, 'a')}}.dump()),
            413);
  const CompletionRequest r = parse_completion_request(
      R"({"prompt": "a", "max_tokens": 5, "temperature": 0, "top_p": 0.5, "seed": 7,
          "stream": true, "stop": "\n", "reuse_prefix": false})",
      limits);
  EXPECT_EQ(r.gen.max_tokens, 5);
  EXPECT_EQ(r.gen.temperature, 0);
  EXPECT_EQ(r.gen.top_p, 0.5);
  EXPECT_EQ(*r.gen.seed, 7u);
  EXPECT_TRUE(r.gen.stream);
  EXPECT_EQ(r.gen.stop, "\n");
  EXPECT_FALSE(r.reuse_prefix);
  // The sessions API is strict: an unknown key is a typo.
  EXPECT_EQ(cont(R"({"max_tokens": 3})"), 0);
  EXPECT_EQ(cont(R"({"max_tokenz": 3})"), 400);
  EXPECT_EQ(cont(""), 0);
  EXPECT_EQ(parse_continue_request("", limits).gen.max_tokens, 64);
  EXPECT_EQ(
      status_of([&] { parse_create_session_request(R"({"prompt": "x", "oops": 1})", limits); }),
      400);
  EXPECT_EQ(status_of([] { check_session_id("../etc"); }), 400);
  EXPECT_EQ(status_of([] { check_session_id(std::string(65, 'a')); }), 400);
  EXPECT_EQ(status_of([] { check_session_id("s-1_A"); }), 0);
  const json e = json::parse(error_json(404, "no session x"));
  EXPECT_EQ(e["error"]["message"], "no session x");
  EXPECT_EQ(e["error"]["code"], 404);
}
