// `rill serve` over HTTP, in this process: sessions (create, stream, fork, download and upload
// a state, delete), OpenAI-shaped completions with the prefix cache, batched stepping of
// concurrent streams, and a JSON 4xx for every kind of bad request.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "rill/train/checkpoint.h"
#include "rill/train/generate.h"
#include "tests/support/files.h"
#include "tests/support/serving.h"

using namespace rill;
using namespace rill::testing;
using nlohmann::json;

namespace {

struct Fixture {
  TempDir dir;
  std::string checkpoint = tiny_lm_checkpoint(dir.str());
  serve::ServerOptions options() const {
    serve::ServerOptions o;
    o.checkpoint = checkpoint;
    o.data_dir = dir / "data";
    o.sessions_dir = dir / "sessions";
    o.http_threads = 32;
    return o;
  }
};

json post(httplib::Client& c, const std::string& path, const json& body, int want) {
  auto r = c.Post(path, body.dump(), "application/json");
  EXPECT_TRUE(r) << path;
  if (!r) return {};
  EXPECT_EQ(r->status, want) << path << ": " << r->body;
  return json::parse(r->body);
}

json get(httplib::Client& c, const std::string& path, int want = 200) {
  auto r = c.Get(path);
  EXPECT_TRUE(r) << path;
  if (!r) return {};
  EXPECT_EQ(r->status, want) << path << ": " << r->body;
  return json::parse(r->body);
}

}  // namespace

TEST(ServeHttp, SessionsStreamForkDownloadUploadAndDelete) {
  Fixture f;
  TestServer server(f.options());
  auto c = server.client();
  const json s = post(c, "/v1/sessions", {{"prompt", "one then two.\n"}, {"seed", 5}}, 201);
  const std::string id = s["id"];
  EXPECT_EQ(s["tokens"], 14);
  EXPECT_GT(s["state_bytes"].get<int64_t>(), 0);
  // Continue, streamed: one event per piece of text, then "done" once the session is saved.
  Events ev = post_events(server.port(), "/v1/sessions/" + id + "/continue",
                          {{"prompt", "two then"}, {"max_tokens", 20}, {"seed", 9}});
  ASSERT_EQ(ev.status, 200);
  ASSERT_GE(ev.events.size(), 2u);
  const json done = ev.events.back();
  EXPECT_EQ(done["type"], "done");
  EXPECT_EQ(done["tokens"], 20);
  EXPECT_EQ(done["session_tokens"], 14 + 8 + 20);
  EXPECT_TRUE(done["saved"].get<bool>());
  EXPECT_EQ(ev.text().size(), 20u);  // byte tokens: one byte each
  // A fork continues exactly as its parent under the same seed, and independently after.
  const std::string id2 = post(c, "/v1/sessions/" + id + "/fork", json::object(), 201)["id"];
  const json body = {{"max_tokens", 15}, {"seed", 3}, {"stream", false}, {"temperature", 0.8}};
  const json a = post(c, "/v1/sessions/" + id + "/continue", body, 200);
  const json b = post(c, "/v1/sessions/" + id2 + "/continue", body, 200);
  EXPECT_EQ(a["text"], b["text"]);
  EXPECT_EQ(a["token_ids"].size(), 15u);
  // Download a state, upload it under another id: the copy continues as the original.
  auto st = c.Get("/v1/sessions/" + id + "/state");
  ASSERT_TRUE(st && st->status == 200);
  auto up = c.Put("/v1/sessions/copy-1/state", st->body, "application/octet-stream");
  ASSERT_TRUE(up);
  EXPECT_EQ(up->status, 201) << up->body;
  EXPECT_EQ(json::parse(up->body)["tokens"], a["session_tokens"]);
  const json a2 = post(c, "/v1/sessions/" + id + "/continue", body, 200);
  const json c2 = post(c, "/v1/sessions/copy-1/continue", body, 200);
  EXPECT_EQ(a2["text"], c2["text"]);
  // The list, and delete.
  const json list = get(c, "/v1/sessions");
  EXPECT_EQ(list["sessions"].size(), 3u);
  auto del = c.Delete("/v1/sessions/" + id2);
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200);
  get(c, "/v1/sessions/" + id2, 404);
  EXPECT_EQ(get(c, "/v1/sessions")["sessions"].size(), 2u);
  // Restarted on the same folder, the sessions are there as after their last request.
  server.stop();
  TestServer again(f.options());
  auto c3 = again.client();
  EXPECT_EQ(get(c3, "/v1/sessions/" + id)["tokens"], a2["session_tokens"]);
  const json a3 = post(c3, "/v1/sessions/" + id + "/continue", body, 200);
  const json c4 = post(c3, "/v1/sessions/copy-1/continue", body, 200);
  EXPECT_EQ(a3["text"], c4["text"]);
}

// OpenAI's completion shape (plain and streamed), and the prefix cache: a prompt that extends
// a cached one reads only the new tokens, and gives what re-reading everything gives.
TEST(ServeHttp, CompletionsHaveOpenAIsShapeAndReusePrefixesExactly) {
  Fixture f;
  TestServer server(f.options());
  auto c = server.client();
  const std::string history = "one then two.\ntwo then three.\nthree then";
  const json r = post(
      c, "/v1/completions",
      {{"model", "anything"}, {"prompt", history}, {"max_tokens", 12}, {"temperature", 0}}, 200);
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["choices"][0]["index"], 0);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["prompt_tokens"], int64_t(history.size()));
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  const std::string reply = r["choices"][0]["text"];
  EXPECT_EQ(reply.size(), 12u);
  // The next turn re-sends the conversation: only the new part is read.
  const std::string turn2 = history + reply + "\nfive then";
  const json reused =
      post(c, "/v1/completions", {{"prompt", turn2}, {"max_tokens", 16}, {"temperature", 0}}, 200);
  EXPECT_EQ(reused["usage"]["prompt_tokens_reused"], int64_t((history + reply).size()));
  const json reread = post(
      c, "/v1/completions",
      {{"prompt", turn2}, {"max_tokens", 16}, {"temperature", 0}, {"reuse_prefix", false}}, 200);
  EXPECT_EQ(reread["usage"]["prompt_tokens_reused"], 0);
  EXPECT_EQ(reused["choices"][0]["text"], reread["choices"][0]["text"]);
  const json stats = get(c, "/v1/stats");
  EXPECT_EQ(stats["prefix_cache"]["lookups"], 2);  // reuse_prefix false does not look
  EXPECT_EQ(stats["prefix_cache"]["hits"], 1);
  // Streamed: chunks of the same shape, the finish reason last, then [DONE] (not an event).
  Events ev =
      post_events(server.port(), "/v1/completions",
                  {{"prompt", turn2}, {"max_tokens", 16}, {"temperature", 0}, {"stream", true}});
  ASSERT_EQ(ev.status, 200);
  EXPECT_EQ(ev.text(), reused["choices"][0]["text"].get<std::string>());
  EXPECT_EQ(ev.events.back()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(ev.events.back()["object"], "text_completion");
  // A stop text ends the completion before it.
  const json stopped =
      post(c, "/v1/completions",
           {{"prompt", history}, {"max_tokens", 40}, {"temperature", 0}, {"stop", "n"}}, 200);
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop") << stopped.dump();
  EXPECT_EQ(stopped["choices"][0]["text"].get<std::string>().find('n'), std::string::npos);
  EXPECT_LT(stopped["usage"]["completion_tokens"].get<int64_t>(), 40);
  EXPECT_EQ(get(c, "/v1/models")["data"][0]["object"], "model");
}

// Streams that generate at the same moment advance in shared batched steps.
TEST(ServeHttp, ConcurrentStreamsShareBatchedSteps) {
  Fixture f;
  TestServer server(f.options());
  auto c = server.client();
  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i)
    ids.push_back(post(c, "/v1/sessions", {{"prompt", "one"}}, 201)["id"]);
  std::vector<std::thread> threads;
  std::vector<Events> results(ids.size());
  for (size_t i = 0; i < ids.size(); ++i)
    threads.emplace_back([&, i] {
      results[i] = post_events(server.port(), "/v1/sessions/" + ids[i] + "/continue",
                               {{"max_tokens", 200}, {"seed", int(i)}});
    });
  for (auto& t : threads) t.join();
  for (const Events& e : results) {
    ASSERT_EQ(e.status, 200);
    EXPECT_EQ(e.events.back()["tokens"], 200);
  }
  const json engine = get(c, "/v1/stats")["engine"];
  EXPECT_EQ(engine["tokens_generated"], 1600);
  EXPECT_GT(engine["batched"].get<double>(), 2.0) << engine.dump();
}

// Hundreds of clients connecting at the same moment are all served (httplib listens with a
// backlog of 5, which the server raises: without that, connections beyond it were reset).
TEST(ServeHttp, ManyClientsConnectingAtOnceAreAllServed) {
  Fixture f;
  TestServer server(f.options());
  const int n = 200;
  std::atomic<int> created{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i)
    clients.emplace_back([&] {
      while (!go) std::this_thread::yield();
      auto c = server.client();
      auto r = c.Post("/v1/sessions", R"({"prompt": "one"})", "application/json");
      if (r && r->status == 201) ++created;
    });
  go = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(created, n);
}

TEST(ServeHttp, BadRequestsGetA4xxJsonErrorNamingTheProblem) {
  Fixture f;
  serve::ServerOptions o = f.options();
  o.max_sessions = 2;
  o.max_prompt_tokens = 100;
  TestServer server(o);
  auto c = server.client();
  auto expect = [&](httplib::Result r, int status, const std::string& words) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body);
    const std::string m = j["error"]["message"];
    EXPECT_NE(m.find(words), std::string::npos) << m;
  };
  expect(c.Post("/v1/completions", "{not json", "application/json"), 400, "not valid JSON");
  expect(c.Post("/v1/completions", R"({"prompt": 1})", "application/json"), 400, "prompt");
  expect(
      c.Post("/v1/completions", json{{"prompt", std::string(101, 'a')}}.dump(), "application/json"),
      413, "at most 100");
  expect(c.Post("/v1/sessions/nope/continue", "{}", "application/json"), 404, "no session nope");
  expect(c.Get("/v1/sessions/nope/state"), 404, "no session nope");
  expect(c.Delete("/v1/sessions/nope"), 404, "no session nope");
  expect(c.Get("/v2/whatever"), 404, "no such route");
  expect(c.Put("/v1/sessions/x/state", "garbage", "application/octet-stream"), 400,
         "not a stream state file");
  // A state saved from another model (other weights).
  {
    LoadedModel l = load_model(f.checkpoint);
    Stream s = start_stream(*l.model, {1, 2, 3}, 1);
    s.save(f.dir / "other.safetensors", {{"checkpoint_weights_sha256", "0123"}});
    expect(c.Put("/v1/sessions/x/state", read_all(f.dir / "other.safetensors"),
                 "application/octet-stream"),
           400, "another model");
  }
  const json s1 = post(c, "/v1/sessions", json::object(), 201);
  expect(c.Post("/v1/sessions/" + s1["id"].get<std::string>() + "/continue", R"({"max_tokens": 3})",
                "application/json"),
         400, "give a prompt");
  expect(c.Post("/v1/sessions/" + s1["id"].get<std::string>() + "/continue",
                R"({"max_tokens": 3, "tempreature": 1})", "application/json"),
         400, "unknown key");
  post(c, "/v1/sessions", json::object(), 201);
  expect(c.Post("/v1/sessions", "{}", "application/json"), 429, "too many sessions");
  // A session in use by a streaming request refuses a second one (GET does not take it).
  const std::string id = s1["id"];
  std::thread long_one([&] {
    post_events(server.port(), "/v1/sessions/" + id + "/continue",
                {{"prompt", "one"}, {"max_tokens", 4000}});
  });
  bool seen_busy = false;
  for (int i = 0; i < 2000 && !seen_busy; ++i) seen_busy = get(c, "/v1/sessions/" + id)["busy"];
  ASSERT_TRUE(seen_busy);
  expect(c.Post("/v1/sessions/" + id + "/continue", R"({"max_tokens": 1})", "application/json"),
         409, "in use");
  long_one.join();
  // A client that hangs up ends its request; the session keeps what was generated until then.
  const int64_t before = get(c, "/v1/sessions/" + id)["tokens"];
  Events hung_up =
      post_events(server.port(), "/v1/sessions/" + id + "/continue", {{"max_tokens", 4000}}, 3);
  EXPECT_EQ(hung_up.events.size(), 3u);
  json after;
  for (int i = 0; i < 500; ++i) {  // the request ends once the server notices
    after = get(c, "/v1/sessions/" + id);
    if (!after["busy"].get<bool>()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(after["busy"].get<bool>());
  EXPECT_GE(after["tokens"].get<int64_t>(), before + 3);
  EXPECT_LT(after["tokens"].get<int64_t>(), before + 4000);
  // The server is still serving.
  EXPECT_EQ(get(c, "/v1/stats")["sessions"], 2);
}
