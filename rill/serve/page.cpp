// The page at / (page.h). It talks to the sessions API: a session is created on the first
// Generate, each Generate continues it with the prompt box's text (the reply streams in as
// server-sent events, read with fetch), Fork switches to a copy of the session, Reset deletes it.
// ?prompt=...&autorun=1&tokens=N fills the box and generates at once (the headless test uses it).
#include "rill/serve/page.h"

namespace rill::serve {

const std::string& page_html() {
  static const std::string html = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rill</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  main { max-width: 860px; margin: 0 auto; padding: 20px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: #5b6475; margin-bottom: 14px; }
  textarea { width: 100%; box-sizing: border-box; height: 80px; font: 14px ui-monospace, monospace;
             padding: 8px; border: 1px solid #c9cfda; border-radius: 6px; }
  .row { display: flex; gap: 10px; align-items: center; margin: 8px 0; flex-wrap: wrap; }
  button { padding: 6px 14px; border-radius: 6px; border: 1px solid #2f5bd3; background: #2f5bd3;
           color: white; cursor: pointer; }
  button.plain { background: white; color: #2f5bd3; }
  button:disabled { opacity: 0.5; cursor: default; }
  input[type=number] { width: 70px; }
  #out { white-space: pre-wrap; font: 14px ui-monospace, monospace; background: white;
         border: 1px solid #c9cfda; border-radius: 6px; padding: 10px; min-height: 220px; }
  #out .prompt { color: #2f5bd3; }
  #stats { color: #5b6475; font-size: 13px; }
  #stats b { color: #1d2330; }
  #error { color: #b3261e; }
</style>
</head>
<body>
<main>
  <h1>rill</h1>
  <div class="sub">A recurrent model: each session keeps a state of fixed size, however long it runs.</div>
  <textarea id="prompt" placeholder="Type a prompt, then Generate. Generate again to continue the session."></textarea>
  <div class="row">
    <button id="go">Generate</button>
    <label>tokens <input id="tokens" type="number" value="200" min="1" max="4096"></label>
    <label>temperature <input id="temp" type="number" value="0.8" min="0" max="2" step="0.1"></label>
    <button id="fork" class="plain" disabled>Fork</button>
    <button id="reset" class="plain" disabled>Reset</button>
    <button id="stop" class="plain" disabled>Stop</button>
  </div>
  <div id="stats">no session yet</div>
  <div id="error"></div>
  <div id="out"></div>
</main>
<script>
const $ = id => document.getElementById(id);
let session = null, reading = null, busy = false;

function human(b) {
  if (b < 1024) return b + " B";
  if (b < 1 << 20) return (b / 1024).toFixed(1) + " KiB";
  return (b / (1 << 20)).toFixed(1) + " MiB";
}
function showStats(extra) {
  if (!session) { $("stats").textContent = "no session yet"; return; }
  $("stats").innerHTML = "session <b>" + session.id + "</b> &middot; " + session.tokens +
    " tokens read &middot; state <b>" + human(session.state_bytes) + "</b>" + (extra || "");
}
function setBusy(b) {
  busy = b;
  $("go").disabled = b;
  $("stop").disabled = !b;
  $("fork").disabled = b || !session;
  $("reset").disabled = b || !session;
}
async function api(method, path, body) {
  const r = await fetch(path, { method, headers: { "Content-Type": "application/json" },
                                body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
  return j;
}
function appendText(text, cls) {
  const span = document.createElement("span");
  if (cls) span.className = cls;
  span.textContent = text;
  $("out").appendChild(span);
  return span;
}

async function generate() {
  $("error").textContent = "";
  setBusy(true);
  try {
    if (!session) session = await api("POST", "/v1/sessions", {});
    const prompt = $("prompt").value;
    if (prompt) appendText(prompt, "prompt");
    $("prompt").value = "";
    const r = await fetch("/v1/sessions/" + session.id + "/continue", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt, max_tokens: Number($("tokens").value),
                             temperature: Number($("temp").value), stream: true }) });
    if (!r.ok) { const j = await r.json(); throw new Error(j.error.message); }
    reading = r.body.getReader();
    const decoder = new TextDecoder();
    const span = appendText("", "reply");
    let buffer = "", n = 0, t0 = performance.now();
    for (;;) {
      const { value, done } = await reading.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        if (!line.startsWith("data: ")) continue;
        const ev = JSON.parse(line.slice(6));
        if (ev.type === "token") {
          span.textContent += ev.text; n += 1;
          const s = (performance.now() - t0) / 1000;
          showStats(" &middot; <b>" + (n / s).toFixed(0) + "</b> pieces/s");
        } else if (ev.type === "done" || ev.type === "error") {
          session.tokens = ev.session_tokens; session.state_bytes = ev.state_bytes;
          showStats(" &middot; <b>" + ev.tokens_per_s.toFixed(0) + "</b> tokens/s &middot; " +
                    ev.tokens + " tokens (" + ev.finish_reason + ")" + (ev.saved ? ", saved" : ""));
          if (ev.error) $("error").textContent = ev.error;
          document.body.dataset.done = "1";
        }
      }
    }
  } catch (e) {
    $("error").textContent = String(e.message || e);
  } finally {
    reading = null;
    setBusy(false);
  }
}
async function fork() {
  try {
    const f = await api("POST", "/v1/sessions/" + session.id + "/fork");
    appendText("\n[forked " + session.id + " into " + f.id + "]\n", "prompt");
    session = f; showStats(); setBusy(false);
  } catch (e) { $("error").textContent = String(e.message || e); }
}
async function reset() {
  try { await api("DELETE", "/v1/sessions/" + session.id); } catch (e) {}
  session = null; $("out").textContent = ""; showStats(); setBusy(false);
}
$("go").onclick = generate;
$("fork").onclick = fork;
$("reset").onclick = reset;
$("stop").onclick = () => { if (reading) reading.cancel(); };
$("prompt").addEventListener("keydown", e => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !busy) generate();
});
const q = new URLSearchParams(location.search);
if (q.has("prompt")) $("prompt").value = q.get("prompt");
if (q.has("tokens")) $("tokens").value = q.get("tokens");
if (q.get("autorun") === "1") generate();
</script>
</body>
</html>
)html";
  return html;
}

}  // namespace rill::serve
