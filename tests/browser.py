"""Loading a page in Debian's headless Chromium and reading what a person would see: console
errors, uncaught exceptions, failed loads, image sizes, the page's text.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
messages separated by NUL bytes on fds 3 and 4), so no websocket client, port or extra
Python package is needed.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
]

# What the test reads from the loaded page.
PROBE_JS = """JSON.stringify({
  images: Array.from(document.images).map(i => {
    const r = i.getBoundingClientRect();
    return {alt: i.alt, complete: i.complete, natural: [i.naturalWidth, i.naturalHeight],
            shown: [r.width, r.height]};
  }),
  scripts: document.scripts.length,
  title: document.title,
  text: document.body ? document.body.innerText : "",
  pwned: window.__pwned === true || document.documentElement.hasAttribute("data-pwned")
})"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    images: list[dict[str, Any]] = field(default_factory=list)
    scripts: int = 0
    title: str = ""
    text: str = ""
    pwned: bool = False


class Chromium:
    def __init__(self, exe: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="sgdlab-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child: the protocol expects fds 3 (in) and 4 (out)
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)  # also when dup2 was a no-op (a == 3), which keeps CLOEXEC
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=wire,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for e in self.events:
                if e.get("method") == method and e.get("sessionId") == session:
                    return e
            self.events.append(self._read_message(deadline))

    def inspect(self, url: str) -> PageReport:
        """Load `url` in a new tab; once loaded, collect errors and what the page shows."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable", session=session)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session)
        self.wait_event("Page.loadEventFired", session)
        probe = self.send("Runtime.evaluate", {"expression": PROBE_JS, "returnByValue": True}, session)
        found = json.loads(probe["result"]["value"])
        report = PageReport(
            images=found["images"],
            scripts=found["scripts"],
            title=found["title"],
            text=found["text"],
            pwned=found["pwned"],
        )
        for e in self.events:
            if e.get("sessionId") != session:
                continue
            params = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                report.errors.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif e.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                report.errors.append(
                    "console.error: " + " ".join(str(a.get("value")) for a in params.get("args", []))
                )
            elif e.get("method") == "Log.entryAdded" and params["entry"].get("level") == "error":
                report.errors.append(f"log: {params['entry'].get('text')}")
        self.send("Target.closeTarget", {"targetId": target})
        return report

    def follow(self, url: str, link_text: str) -> list[dict[str, Any]]:
        """Load `url`, then click every link whose text is `link_text`, each in a fresh tab
        (the page is loaded again for the next one): what each click opened, as
        {href, url, root, errors} (root: the tag of the opened document's root element,
        "svg" for an SVG image; errors: failed loads and console errors)."""
        links = f"Array.from(document.links).filter(a => a.textContent === {json.dumps(link_text)})"
        hrefs = json.loads(
            self._evaluate_in(url, f"JSON.stringify({links}.map(a => a.getAttribute('href')))")
        )
        where = "JSON.stringify({url: location.href, root: document.documentElement.tagName})"
        opened = []
        for i, href in enumerate(hrefs):
            found, errors = self._click_in(url, f"{links}[{i}].click()", where)
            opened.append({"href": href, **json.loads(found), "errors": errors})
        return opened

    def _tab(self, url: str) -> tuple[str, str]:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session)
        self.wait_event("Page.loadEventFired", session)
        return target, session

    def _evaluate_in(self, url: str, expression: str) -> str:
        target, session = self._tab(url)
        value = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        self.send("Target.closeTarget", {"targetId": target})
        return value["result"]["value"]

    def _click_in(self, url: str, click: str, then: str) -> tuple[str, list[str]]:
        """Load `url`, run `click` (a link's click()), wait for the page it opens, and evaluate
        `then` there; with the errors seen after the click."""
        target, session = self._tab(url)
        self.events.clear()
        self.send("Runtime.evaluate", {"expression": click}, session)
        self.wait_event("Page.loadEventFired", session)
        value = self.send("Runtime.evaluate", {"expression": then, "returnByValue": True}, session)
        errors = [
            str(e["params"].get("errorText") or e["params"].get("entry", {}).get("text"))
            for e in self.events
            if e.get("sessionId") == session
            and (
                e.get("method") == "Network.loadingFailed"
                or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")
            )
        ]
        self.send("Target.closeTarget", {"targetId": target})
        return value["result"]["value"], errors

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def follow_links(path: Path, link_text: str) -> list[dict[str, Any]]:
    """Click every link named `link_text` on the page at `path` (`Chromium.follow`)."""
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no chromium")
    with Chromium(exe) as browser:
        return browser.follow(path.resolve().as_uri(), link_text)


def inspect_page(path: Path) -> PageReport:
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no chromium")
    with Chromium(exe) as browser:
        return browser.inspect(path.resolve().as_uri())
