#!/usr/bin/env python3
"""Browser test of the chat page served by `qwenkit serve`, in a real headless Chromium.

Starts the server on a free loopback port with an API key and the default model, then drives
Debian's `chromium` through `chromium-driver` with Selenium (from PyPI):

- the page and its modules come with their Content-Type and a Content-Security-Policy, without
  the key; /v1 without the key is refused;
- the page asks for the key (a wrong one is refused and asked again), then shows the model;
- settings are changed in the settings dialog (temperature 0, a token limit);
- a message sent with the keyboard (Enter) gets an answer whose text appears in pieces while it
  is streamed (recorded by a MutationObserver, so no timing guesses), then tokens/s and context
  use, and a code block whose Copy button works; the chat is photographed for
  docs/screenshots/chat.png;
- Escape stops a long answer (the page shows it stopped and can send again);
- model output with `<script>`, `<img onerror=…>` and a `javascript:` link is displayed as text:
  the output really comes from the model through the server's stream — the test adds a
  `response_format` whose JSON schema allows exactly that text, so the model must write it —
  and no element, handler or link is made of it;
- conversations survive a reload (kept in localStorage), including the hostile one, rendered
  again from storage; rename and delete work through their dialogs;
- right-to-left text (Arabic, Hebrew) is laid out right to left;
- the browser's console shows no errors (a CSP violation would be one) beyond the expected 401s;
- with the tiny Qwen3.5 fixture (its template thinks), the settings offer thinking on/off; the
  reasoning is shown collapsed (and opens by keyboard), and is absent with thinking off.

Usage: python Tests/browser/test_chat.py [--binary .build/release/qwenkit] [--model MODEL]
       [--screenshots docs/screenshots] [--fixtures ../shared/fixtures]
A plain script (no pytest needed); exits non-zero on the first failure. scripts/test-browser.sh
installs what it needs (scripts/setup-browser.sh) and runs it.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

API_KEY = "sk-qwenkit-browser"
CONTEXT = 2048
# Generous: the CI machine may be slow and shared; every wait ends as soon as its condition holds.
GENERATION_TIMEOUT = 300
UI_TIMEOUT = 20

HOSTILE = ("<script>window.xssFired=1</script> <img src=x onerror=window.xssFired=2> "
           "[click me](javascript:window.xssFired=3)")
ARABIC = "مرحبا بالعالم، هذا نص عربي."
HEBREW = "שלום עולם, זה טקסט בעברית."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, headers=None):
    """(status, headers, body) of a GET, 4xx/5xx included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


class Server:
    def __init__(self, binary, model, context=CONTEXT, log="/tmp/qwenkit-browser-server.log"):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--api-key", API_KEY,
                "--context", str(context)]
        if model:
            args += ["-m", model]
        self.log = open(log, "w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"qwenkit serve exited with {self.process.returncode}; see {self.log.name}")
            try:
                if http_get(self.base + "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                self.stop()
                raise SystemExit("qwenkit serve did not answer /health within 120 s")
            time.sleep(0.2)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def start_browser():
    options = webdriver.ChromeOptions()
    for argument in ["--headless=new", "--window-size=1280,1000", "--disable-gpu", "--disable-dev-shm-usage",
                     "--lang=en-US", "--force-prefers-reduced-motion"]:
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run its sandbox as root
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver named explicitly, so Selenium Manager never tries to download one.
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


class Page:
    """The chat page in the browser, with waits on conditions (never fixed sleeps)."""

    def __init__(self, driver):
        self.driver = driver

    def wait(self, condition, timeout=UI_TIMEOUT, message=""):
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(lambda d: condition(), message)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def find(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def finds(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def dialog_open(self, dialog_id):
        return self.js("return document.getElementById(arguments[0]).open", dialog_id)

    def assistant_messages(self):
        return self.finds("#messages article.message.assistant")

    def last_answer(self):
        return self.assistant_messages()[-1]

    def status_of(self, article):
        return article.get_attribute("data-status")

    def send(self, text):
        box = self.find("#message-input")
        box.click()
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def wait_ready(self):
        self.wait(lambda: self.js("return document.body.dataset.ready") == "true", message="the page did not become ready")

    def enter_key(self, key):
        self.wait(lambda: self.dialog_open("key-dialog"), message="the page did not ask for the API key")
        self.find("#key-input").send_keys(key + Keys.ENTER)

    def change_settings(self, temperature=None, max_tokens=None, thinking=None):
        self.find("#open-settings").click()
        self.wait(lambda: self.dialog_open("settings-dialog"))
        for selector, value in [("#setting-temperature", temperature), ("#setting-max-tokens", max_tokens)]:
            if value is not None:
                field = self.find(selector)
                field.clear()
                field.send_keys(str(value))
        if thinking is not None:
            box = self.find("#setting-thinking")
            check(box.is_displayed(), "no thinking switch for a model that thinks")
            if box.is_selected() != thinking:
                box.send_keys(Keys.SPACE)
        self.find("#setting-temperature").send_keys(Keys.ENTER)
        self.wait(lambda: not self.dialog_open("settings-dialog"), message="the settings dialog stayed open")

    def wait_for_answer(self, count):
        """Waits until `count` answers exist and the last is finished; returns it."""
        self.wait(lambda: len(self.assistant_messages()) >= count, message="no answer appeared")
        self.wait(lambda: self.status_of(self.last_answer()) not in (None, "streaming"), GENERATION_TIMEOUT,
                  "the answer did not finish")
        return self.last_answer()


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def run(server, driver, screenshots):
    page = Page(driver)

    # The page and its modules: public, typed, under a strict CSP.
    status, headers, body = http_get(server.base + "/")
    check(status == 200 and headers["Content-Type"].startswith("text/html"), f"/ answered {status} {headers['Content-Type']}")
    csp = headers["Content-Security-Policy"] or ""
    check("script-src 'self'" in csp and "unsafe-inline" not in csp, f"weak CSP: {csp!r}")
    for path in ["/app.js", "/api.js", "/chat.js", "/markdown.js", "/store.js"]:
        status, headers, _ = http_get(server.base + path)
        check(status == 200 and headers["Content-Type"].startswith("text/javascript"), f"{path}: {status} {headers['Content-Type']}")
    check(http_get(server.base + "/v1/models")[0] == 401, "/v1/models answered without the key")
    print("ok  page served with CSP; /v1 needs the key")

    # The key: asked for, a wrong one refused, the right one accepted.
    driver.get(server.base + "/")
    page.enter_key("sk-wrong")
    page.wait(lambda: "refused" in page.find("#key-error").text, message="a wrong key was not refused")
    check(page.dialog_open("key-dialog"), "the key dialog closed after a wrong key")
    page.find("#key-input").send_keys(API_KEY + Keys.ENTER)
    page.wait_ready()
    model_id = page.find("#model-name").text
    check(model_id, "no model name shown")
    print(f"ok  API key asked for, wrong key refused, right key accepted; model {model_id}")

    check_markdown(page)
    print(f"ok  Markdown renderer: {len(MARKDOWN_CASES)} cases, {len(HOSTILE_MARKDOWN)} hostile inputs kept as text")

    # Settings through their dialog. This model does not think: no thinking switch.
    page.change_settings(temperature=0, max_tokens=160)
    page.find("#open-settings").click()
    page.wait(lambda: page.dialog_open("settings-dialog"))
    check(not page.find("#setting-thinking").is_displayed(), "a thinking switch for a model without thinking")
    page.find("#settings-dialog [data-close]").click()
    saved = json.loads(page.js("return localStorage.getItem('qwenkit.settings.v1')"))
    check(saved["temperature"] == 0 and saved["maxTokens"] == 160, f"settings not saved: {saved}")
    print("ok  settings saved")

    # A streamed answer: a MutationObserver records the answer's text length at every change.
    page.js("""
        window.answerLengths = [];
        new MutationObserver(() => {
            const answers = document.querySelectorAll('#messages article.assistant');
            const last = answers[answers.length - 1];
            if (last) window.answerLengths.push([last.dataset.status, last.querySelector('.message-body').textContent.length]);
        }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true, attributes: true});
    """)
    page.send("Write a short Python function that checks whether a string is a palindrome, with a one-line explanation.")
    answer = page.wait_for_answer(1)
    text = answer.find_element(By.CSS_SELECTOR, ".message-body").text
    check(text.strip(), "the answer is empty")
    lengths = page.js("return window.answerLengths")
    growing = sorted({n for status, n in lengths if status == "streaming" and n > 0})
    check(len(growing) >= 2, f"the text did not appear in pieces while streaming: {lengths[-10:]}")
    footer = answer.find_element(By.CSS_SELECTOR, ".message-footer").text
    check("tokens/s" in footer and f"/ {CONTEXT}" in footer, f"no speed or context use under the answer: {footer!r}")
    check(f"/ {CONTEXT} tokens" in page.find("#context-text").text, "no context use in the composer")
    check(page.find("#send").is_displayed() and not page.find("#stop").is_displayed(), "send/stop buttons wrong after the answer")
    print(f"ok  streamed answer ({len(growing)} distinct lengths seen while streaming); {footer}")
    if screenshots:
        # The question and the start of the answer in view, nothing focused.
        page.js("document.activeElement.blur(); document.getElementById('messages').scrollTop = 0")
        os.makedirs(screenshots, exist_ok=True)
        driver.save_screenshot(os.path.join(screenshots, "chat.png"))
        print(f"ok  screenshot {os.path.join(screenshots, 'chat.png')}")
    # The answer to that prompt (greedy) has a code block; its Copy button copies it.
    copy = answer.find_element(By.CSS_SELECTOR, "figure.code button.copy")
    code = answer.find_element(By.CSS_SELECTOR, "figure.code pre code").get_attribute("textContent")
    check("def " in code, f"the code block holds {code!r}")
    copy.click()
    page.wait(lambda: copy.text == "Copied", message=f"Copy did not copy (button says {copy.text!r})")
    print("ok  code block with a working Copy button")

    # Stop: Escape ends a long answer (room for 1,500 tokens, so even a fast machine is still
    # writing when Escape arrives); the page can send again.
    page.change_settings(max_tokens=1500)
    page.send("Count from 1 to 500, one number per line.")
    page.wait(lambda: len(page.assistant_messages()) == 2 and page.status_of(page.last_answer()) == "streaming"
              and page.last_answer().find_element(By.CSS_SELECTOR, ".message-body").text.strip() != "",
              GENERATION_TIMEOUT, "the long answer did not start")
    check(page.find("#stop").is_displayed(), "no stop button while streaming")
    page.find("#message-input").send_keys(Keys.ESCAPE)
    page.wait(lambda: page.status_of(page.last_answer()) == "stopped", message="Escape did not stop the answer")
    check("Stopped." in page.last_answer().find_element(By.CSS_SELECTOR, ".message-footer").text, "not shown as stopped")
    check(page.find("#send").is_displayed(), "no send button after stopping")
    print("ok  Escape stopped the answer")

    # Hostile model output, shown as text: the page's requests get a response_format that leaves
    # the model only this text to write. The rest of the path (server stream, SSE parsing,
    # Markdown rendering) is the page's own.
    page.find("#new-conversation").click()
    page.js("""
        const hostile = arguments[0];
        const realFetch = window.fetch;
        window.fetch = (url, init) => {
            if (String(url).endsWith('/v1/chat/completions') && init && init.body) {
                const body = JSON.parse(init.body);
                body.response_format = {type: 'json_schema', json_schema: {name: 'hostile', schema: {enum: [hostile]}}};
                init = {...init, body: JSON.stringify(body)};
            }
            return realFetch(url, init);
        };
    """, HOSTILE)
    page.send("Reply with anything. <b>bold?</b> <img src=x onerror=window.xssFired=4>")
    answer = page.wait_for_answer(1)
    check_hostile_shown_as_text(page, answer)
    print("ok  <script>, <img onerror> and a javascript: link from the model shown as text")

    # Storage: after a reload, both conversations are there, and the hostile one renders again
    # from localStorage as text. A conversation with Arabic and Hebrew is added to storage to see
    # right-to-left layout.
    page.js("""
        const all = JSON.parse(localStorage.getItem('qwenkit.conversations.v1'));
        all.push({id: 'rtl', title: 'RTL', created: 1, updated: 1, messages: [
            {role: 'user', content: arguments[0]},
            {role: 'assistant', content: arguments[1] + '\\n\\n- ' + arguments[0], status: 'done'}]});
        localStorage.setItem('qwenkit.conversations.v1', JSON.stringify(all));
    """, ARABIC, HEBREW)
    driver.refresh()
    page.wait_ready()
    titles = [b.text for b in page.finds("#conversation-list button")]
    check(len(titles) == 3, f"conversations after reload: {titles}")
    check(page.find("#conversation-title").text.startswith("Reply with anything"), "the latest conversation is not shown first")
    check_hostile_shown_as_text(page, page.last_answer())
    print("ok  conversations kept across a reload; the stored hostile answer still text")

    page.finds("#conversation-list button")[-1].click()
    page.wait(lambda: page.find("#conversation-title").text == "RTL")
    directions = page.js("""
        // The person's text as one block; the answer's blocks each take their own direction.
        return [...document.querySelectorAll('#messages .message-body.plain, #messages .message-body p, #messages .message-body li')]
            .map((e) => getComputedStyle(e).direction);
    """)
    check(len(directions) == 3 and all(d == "rtl" for d in directions), f"right-to-left text laid out as {directions}")
    print("ok  Arabic and Hebrew laid out right to left")

    # Rename and delete, by keyboard in their dialogs.
    page.find("#rename-conversation").click()
    page.wait(lambda: page.dialog_open("rename-dialog"))
    rename = page.find("#rename-input")
    rename.clear()
    rename.send_keys("Right to left" + Keys.ENTER)
    page.wait(lambda: page.find("#conversation-title").text == "Right to left", message="rename did not apply")
    check("Right to left" in [b.text for b in page.finds("#conversation-list button")], "renamed title not in the list")
    page.find("#delete-conversation").click()
    page.wait(lambda: page.dialog_open("delete-dialog"))
    page.find("#delete-dialog button[value=delete]").click()
    page.wait(lambda: len(page.finds("#conversation-list button")) == 2, message="delete did not remove the conversation")
    stored = json.loads(page.js("return localStorage.getItem('qwenkit.conversations.v1')"))
    check(all(c["id"] != "rtl" for c in stored), "the deleted conversation is still stored")
    print("ok  rename and delete")

    # No console errors: a CSP violation or a script error would show here. The 401s of the
    # key exchange are expected.
    errors = [entry["message"] for entry in driver.get_log("browser")
              if entry["level"] == "SEVERE" and "status of 401" not in entry["message"]]
    check(not errors, f"console errors: {errors}")
    print("ok  no console errors")


# The Markdown renderer on its own, in the page: (input, the HTML it must build). Hostile input
# must come out as the same text, with no element made of it.
MARKDOWN_CASES = [
    ("**bold**, *em*, `code` and ~~gone~~",
     '<p dir="auto"><strong>bold</strong>, <em>em</em>, <code>code</code> and <del>gone</del></p>'),
    ("snake_case_name and 2*3*4", '<p dir="auto">snake_case_name and 2*3*4</p>'),
    ("[docs](https://example.com/a?b=1) and https://example.com/x.",
     '<p dir="auto"><a href="https://example.com/a?b=1" rel="noopener noreferrer" target="_blank">docs</a> and '
     '<a href="https://example.com/x" rel="noopener noreferrer" target="_blank">https://example.com/x</a>.</p>'),
    ("![a cat](https://example.com/cat.png)",
     '<p dir="auto"><a href="https://example.com/cat.png" rel="noopener noreferrer" target="_blank">[image: a cat]</a></p>'),
    ("# Title\n\n- one\n- two\n\n3. three\n4. four",
     '<h3 dir="auto">Title</h3><ul dir="auto"><li dir="auto">one</li><li dir="auto">two</li></ul>'
     '<ol dir="auto" start="3"><li dir="auto">three</li><li dir="auto">four</li></ol>'),
    ("> quoted", '<blockquote dir="auto"><p dir="auto">quoted</p></blockquote>'),
]
HOSTILE_MARKDOWN = [
    "<script>window.xssFired=1</script>",
    "<img src=x onerror=window.xssFired=2>",
    "[x](javascript:window.xssFired=3)",
    "[x](JaVaScRiPt:window.xssFired=3)",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](//evil.example/)",
    "[x](vbscript:msgbox)",
    '<a href="javascript:window.xssFired=5">a</a>',
    "<svg onload=window.xssFired=6>",
    "`</code><script>window.xssFired=7</script>`",
]


def check_markdown(page):
    results = page.driver.execute_async_script("""
        const [cases, hostile, done] = arguments;
        import('/markdown.js').then(({renderMarkdown}) => {
            const render = (text) => { const div = document.createElement('div'); renderMarkdown(text, div); return div; };
            const built = cases.map(([text]) => render(text).innerHTML);
            const fence = render('```swift\\nlet x = "<b>"\\n');  // unclosed, as while streaming
            const attacks = hostile.map((text) => {
                const div = render(text);
                return [div.textContent, div.querySelectorAll('*:not(p):not(code)').length];
            });
            done({built, fence: [fence.querySelector('figure.code code')?.textContent, fence.querySelector('.code-language')?.textContent],
                  attacks, fired: window.xssFired ?? null});
        }, (error) => done({error: String(error)}));
    """, MARKDOWN_CASES, HOSTILE_MARKDOWN)
    check("error" not in results, f"markdown.js did not load: {results}")
    for (text, expected), built in zip(MARKDOWN_CASES, results["built"]):
        check(built == expected, f"Markdown {text!r} built {built!r}, expected {expected!r}")
    check(results["fence"] == ['let x = "<b>"', "swift"], f"unclosed fence: {results['fence']}")
    for text, (shown, elements) in zip(HOSTILE_MARKDOWN, results["attacks"]):
        check(shown.replace("`", "") == text.replace("`", "") and elements == 0, f"{text!r} became {elements} element(s), text {shown!r}")
    check(results["fired"] is None, "a hostile snippet ran")


def run_thinking(driver, binary, fixtures):
    """Thinking, with the tiny random Qwen3.5 fixture: its template opens `<think>` unless thinking
    is off, so with thinking on everything it writes is reasoning, with it off everything is
    the answer. Greedy, so the same every run; the words are random, the structure is not."""
    server = Server(binary, os.path.join(fixtures, "models", "tiny-qwen35"), context=512,
                    log="/tmp/qwenkit-browser-thinking-server.log")
    try:
        page = Page(driver)
        driver.get(server.base + "/")
        page.enter_key(API_KEY)
        page.wait_ready()
        page.change_settings(temperature=0, max_tokens=24, thinking=True)
        page.send("Hello")
        answer = page.wait_for_answer(1)
        details = answer.find_element(By.CSS_SELECTOR, "details.thinking")
        check(details.is_displayed() and not details.get_attribute("open"), "thinking not shown collapsed")
        reasoning = answer.find_element(By.CSS_SELECTOR, ".thinking-body")
        check(reasoning.get_attribute("textContent").strip() and not reasoning.is_displayed(), "no hidden reasoning")
        details.find_element(By.CSS_SELECTOR, "summary").send_keys(Keys.ENTER)  # opened by keyboard
        page.wait(lambda: reasoning.is_displayed(), message="the thoughts did not open")
        page.change_settings(thinking=False)
        page.send("Hello again")
        answer = page.wait_for_answer(2)
        check(not answer.find_element(By.CSS_SELECTOR, "details.thinking").is_displayed(), "thoughts shown with thinking off")
        check(answer.find_element(By.CSS_SELECTOR, ".message-body").text.strip(), "no answer with thinking off")
        print("ok  thinking shown collapsed, opened by keyboard; none with thinking off")
    finally:
        server.stop()


def check_hostile_shown_as_text(page, answer):
    body = answer.find_element(By.CSS_SELECTOR, ".message-body")
    text = body.get_attribute("textContent")
    for piece in ["<script>window.xssFired=1</script>", "<img src=x onerror=window.xssFired=2>",
                  "[click me](javascript:window.xssFired=3)"]:
        check(piece in text, f"{piece!r} not shown as text in {text!r}")
    made = page.js("""
        const m = document.getElementById('messages');
        return {scripts: m.querySelectorAll('script').length, images: m.querySelectorAll('img').length,
                bold: m.querySelectorAll('b').length, links: [...m.querySelectorAll('a')].map((a) => a.getAttribute('href')),
                handlers: [...m.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).length,
                fired: window.xssFired ?? null};
    """)
    check(made == {"scripts": 0, "images": 0, "bold": 0, "links": [], "handlers": 0, "fired": None},
          f"hostile text became markup: {made}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=".build/release/qwenkit")
    parser.add_argument("--model", default=os.environ.get("QWENKIT_MODEL"))
    parser.add_argument("--screenshots", default=None, help="folder for chat.png (not written when omitted)")
    parser.add_argument("--fixtures", default=os.environ.get("QWENKIT_FIXTURES"),
                        help="the shared fixtures (for the thinking check with tiny-qwen35; skipped without)")
    args = parser.parse_args()
    server = Server(args.binary, args.model)
    driver = None
    try:
        driver = start_browser()
        run(server, driver, args.screenshots)
        server.stop()
        if args.fixtures:
            run_thinking(driver, args.binary, args.fixtures)
        else:
            print("skip thinking check: no --fixtures or QWENKIT_FIXTURES")
    except (AssertionError, TimeoutException) as error:
        if driver:
            driver.save_screenshot("/tmp/qwenkit-browser-failure.png")
        print(f"FAIL {type(error).__name__}: {error} (screenshot /tmp/qwenkit-browser-failure.png, server log {server.log.name})",
              file=sys.stderr)
        sys.exit(1)
    finally:
        if driver:
            driver.quit()
        server.stop()
    print("browser test passed")


if __name__ == "__main__":
    main()
