"""The Gradio chat UI (`/chat`, modforge_nb.chat_ui) driven in headless Chromium (Debian's `chromium`, through
playwright) on the real server over the tiny served system (tests/test_serve.py's fixtures): pick the `reasoning`
modifier, mode turbo and a short answer, ask, wait for the streamed answer and its routing decision, thumbs up. Then: the
decision names the modifier and the mode; the answer is the one the openai client gets for the same request; the request
log holds the rating and /metrics counted the request; nothing was fetched from outside the server; the screenshot is a
real page (decodes, its size, not blank, its text holds the answer). The screenshot is also written to
docs/images/chat_ui.png for the README."""
import os, re, shutil, sqlite3
import openai, pytest
from conftest import ROOT

pytest.importorskip("playwright.sync_api", reason="needs the playwright package (requirements.txt), which drives chromium")
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: apt-get install -y chromium "
                                "(or CHROMIUM=/path/to/chrome); playwright's own browser download is not used")

QUESTION, MAX_TOKENS, VIEWPORT = "What is 2 + 2?", 24, {"width": 1100, "height": 760}
SCREENSHOT = ROOT / "docs" / "images" / "chat_ui.png"

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    "The real server on loopback over the tiny served system (base `tiny`, mode turbo, modifier `reasoning`), with a request log."
    from modforge_nb.serve_backend import load_backends, tiny_served
    from modforge_nb.server import ServerThread, make_app
    served = tiny_served(ROOT / "cache")          # built once, then reused from the cache
    backends = load_backends(served, n_ctx=512)
    app = make_app(served, backends, log=tmp_path_factory.mktemp("ui") / "requests.sqlite")
    with ServerThread(app) as st: yield app, st.url
    for b in backends.values(): b.close()

def words(s: str) -> str: return " ".join(s.split())

def test_chat_ui_in_headless_chromium(server, tmp_path):
    from PIL import Image, ImageStat
    from playwright.sync_api import sync_playwright
    app, url = server
    outside, page_errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(60_000)
            def only_this_server(route):          # the page must render offline: anything else is recorded and refused
                if route.request.url.startswith(url + "/"): route.continue_()
                else: outside.append(route.request.url); route.abort()
            page.route("**/*", only_this_server)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto(url + "/chat", wait_until="load")
            page.locator("#model input").click()
            page.get_by_role("option", name="reasoning").click()
            page.locator("#mode").get_by_label("turbo").check()
            page.locator("#max_tokens input[type=number]").fill(str(MAX_TOKENS))
            page.locator("#max_tokens input[type=number]").press("Enter")
            page.locator("#question textarea").fill(QUESTION)
            page.locator("#question textarea").press("Enter")
            decision = page.locator("#chat").get_by_text("modifier reasoning ·")
            decision.wait_for()
            shown_answer = page.locator("#chat [data-testid=bot]").first.inner_text()
            page.locator("#chat").get_by_role("button", name="Like", exact=True).click()
            stored = page.get_by_text("thumbs up stored with").first   # the server said 200 (a toast)
            stored.wait_for()
            page.locator(".toast-close").first.click()                  # it covers the controls in the screenshot
            stored.wait_for(state="detached")
            decision.click()                      # opens the decision: the route and the request id
            opened = page.locator("#chat").get_by_text("request:")
            opened.wait_for(state="visible")
            page.wait_for_timeout(500)            # the accordion's opening animation, before the screenshot
            detail = opened.inner_text()
            bubble = page.locator("#chat [data-testid=bot]").first.bounding_box()
            shot = tmp_path / "chat_ui.png"
            page.screenshot(path=str(shot))
            body_text = page.locator("body").inner_text()
        finally:
            browser.close()
    assert outside == [], f"the page fetched from outside the server: {outside}"
    assert page_errors == [], page_errors

    # the decision line names the modifier and the mode the user picked
    title = next(l for l in body_text.splitlines() if l.startswith("modifier reasoning ·"))
    assert re.fullmatch(rf"modifier reasoning · domain reasoning · mode turbo · not escalated · [0-9.]+ s · [0-9]+ tokens", title), title
    # the answer is the API's own for the same request (Gradio shows it as Markdown: leading and repeated blanks go)
    api = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60).chat.completions.create(
        model="reasoning", messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=MAX_TOKENS,
        extra_body={"mode": "turbo"})
    assert api.modforge["mode"] == "turbo" and api.usage.completion_tokens == int(title.split(" · ")[-1].split()[0])
    assert words(shown_answer) == words(api.choices[0].message.content) != "", (shown_answer, api.choices[0].message.content)
    # the rating is stored with the UI's request in the SQLite log, which the request id shown names
    rid = re.search(r"request: (chatcmpl-\w+)", detail).group(1)
    with sqlite3.connect(app.state.log.path) as db:
        row = db.execute("SELECT model, modifier, mode, stream, status, feedback, completion_tokens FROM requests WHERE request_id = ?",
                         (rid,)).fetchone()
    assert row == ("reasoning", "reasoning", "turbo", 1, 200, 1, api.usage.completion_tokens), row
    assert re.search(r'modforge_requests_total\{domain="reasoning",modifier="reasoning",status="200"\} [1-9]', app.state.metrics.text().decode())

    # the screenshot is the page: a PNG of the viewport's size, not blank (measured: a blank page, or Gradio's page when
    # its scripts do not load, has stddev 0 and one grey level; the empty UI 10.4 and ~230 levels), the answer's bubble
    # inked with text, and the page's text holding the question, the answer and the decision
    img = Image.open(shot); img.load()
    assert (img.format, img.size) == ("PNG", (VIEWPORT["width"], VIEWPORT["height"]))
    gray = img.convert("L")
    assert ImageStat.Stat(gray).stddev[0] > 5 and len(gray.getcolors(256)) > 40, (ImageStat.Stat(gray).stddev, len(gray.getcolors(256)))
    box = gray.crop((int(bubble["x"]), int(bubble["y"]), int(bubble["x"] + bubble["width"]), int(bubble["y"] + bubble["height"])))
    dark = sum(box.histogram()[:128]) / (box.width * box.height)                  # text pixels in the answer's bubble
    assert box.height > 20 and dark > 0.01, (bubble, dark)
    assert QUESTION in body_text and words(shown_answer) in words(body_text) and title in body_text and rid in body_text
    if os.environ.get("MODFORGE_UPDATE_SCREENSHOT"):                              # the README's picture of the UI, on request
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True); shutil.copyfile(shot, SCREENSHOT)
