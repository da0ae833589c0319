// Drives the chat page's own script (modforge_nb.chat_ui.PAGE) in node, for tests/test_serve.py: a minimal DOM stand-in,
// the page's fetch pointed at the server. argv: base URL, the page's script file, API key. Prints JSON of what the page shows.
const [base, file, key] = process.argv.slice(2);
const els = {};
function el(id) {
  const e = {id, value: "", innerHTML: "", textContent: "", className: "", children: [], handlers: {}, parentNode: null,
    classList: {add(c) { e.className += " " + c; }, remove(c) { e.className = e.className.replace(" " + c, ""); }},
    appendChild(c) { c.parentNode = e; e.children.push(c); return c; }, scrollIntoView() {},
    addEventListener(t, f) { e.handlers[t] = f; }, querySelectorAll() { return e.children.filter(c => c.type === "button"); }};
  return e;
}
for (const id of ["model", "mode", "key", "input", "form", "log", "send"]) els[id] = el(id);
global.document = {querySelector: s => els[s.slice(1)], createElement: () => el("")};
const store = {}; global.localStorage = {getItem: k => store[k] ?? null, setItem: (k, v) => { store[k] = v; }};
const realFetch = fetch; let lastFeedback = null;
global.fetch = async (path, opts) => { const r = await realFetch(base + path, opts); if (path === "/v1/feedback") lastFeedback = r.status; return r; };
els.key.value = key;
eval(require("fs").readFileSync(file, "utf8"));
(async () => {
  for (let i = 0; i < 100 && !els.model.innerHTML; i++) await new Promise(r => setTimeout(r, 50));
  els.model.value = (els.model.innerHTML.match(/<option>([^<]+)<\/option>/g) || []).map(o => o.slice(8, -9)).pop();
  els.mode.value = "balanced";
  els.input.value = "What is 2 + 2?";
  await els.form.handlers.submit({preventDefault() {}});
  const box = els.log.children[1], decision = box.children[0];
  await decision.children[0].onclick();                     // thumbs up
  console.log(JSON.stringify({models: els.model.innerHTML, modes: els.mode.innerHTML, model: els.model.value, answer: box.textContent,
                              decision: decision.textContent, feedback_status: lastFeedback, thumb: decision.children[0].className}));
})().catch(e => { console.error(e); process.exit(1); });
