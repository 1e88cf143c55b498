"""The frontend in a real browser (headless Chromium driven by Playwright): the production
stack serving the built assets, the dev stack's Vite server with hot module replacement;
and the production image's build cache (a frontend change rebuilds the Node stage only).

The browser: ``CHROMIUM_PATH``, else ``chromium`` on PATH (Debian's package), else
Playwright's own (``uv run playwright install chromium``). Screenshots of each step go to
``artifacts/frontend/`` (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Error,
    Page,
    Response,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import ROOT, Stack, copy_checkout
from tests.helpers import remove_project_images

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# assertions wait up to 20 s (Playwright's 5 s default is short when CI runs the other
# sessions beside this one on two cores); a page that never gets there still fails
expect.set_options(timeout=20_000)

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "artifacts" / "frontend"
#: errors the page handles and shows (validation 400, duplicate 409): Chromium still logs
#: each failed request to the console, the only console errors a test expects
HANDLED = re.compile(r"Failed to load resource: the server responded with a status of (400|409)")
ARGS = [
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The browser to drive: CHROMIUM_PATH, Debian's chromium, or None (Playwright's own)."""
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        try:
            launched = p.chromium.launch(executable_path=chromium_path(), args=ARGS)
        except Error as exc:
            pytest.fail(
                "no browser for the frontend tests: install Chromium (`apt-get install "
                "chromium`, or set CHROMIUM_PATH to one), or Playwright's own with `uv run "
                f"playwright install chromium`.\n{exc.message.splitlines()[0]}"
            )
        yield launched
        launched.close()


class Console:
    """Page errors and console errors of a page: any the test did not expect fail it.
    Everything else the page said or failed to load is kept for a failure's message."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.story: list[str] = []
        page.on("pageerror", self._page_error)
        page.on("console", self._console)
        page.on("requestfailed", lambda r: self.story.append(f"failed: {r.url} {r.failure}"))
        page.on("response", self._response)

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.story.append(f"{response.status} {response.status_text}: {response.url}")

    def _page_error(self, exc: Error) -> None:
        self.errors.append(f"page error: {exc}")
        self.story.append(f"page error: {exc}")

    def _console(self, message: ConsoleMessage) -> None:
        self.story.append(f"console {message.type}: {message.text}")
        if message.type == "error" and not HANDLED.search(message.text):
            self.errors.append(f"console error: {message.text}")

    def check(self) -> None:
        assert not self.errors, "the page logged errors:\n" + "\n".join(self.errors)

    def forget(self, fragment: str) -> None:
        """Drop what was said with ``fragment`` (a failure of the browser's, not the page's:
        the test has dealt with it); it stays in the story, marked."""
        self.errors = [e for e in self.errors if fragment not in e]
        self.story = [f"(dealt with) {line}" if fragment in line else line for line in self.story]


#: what Chromium says of a request it aborted because this machine's network interfaces
#: changed (Docker adding or removing another stack's network): the browser lost it, not
#: the server
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"


def expect_rendered(
    stack: Stack, service: str, page: tuple[Page, Console], timeout: float = 20_000
) -> None:
    """The app's first page shows its title; if not, the failure says what the page saw
    (console, failed requests) and what the server logged. A load that lost a module to a
    network change (Chromium aborts requests in flight when any interface changes, and the
    other tests' stacks add and remove Docker networks) is loaded again, once."""
    tab, console = page
    title = tab.get_by_test_id("app-title")
    deadline = time.monotonic() + timeout / 1000
    reloaded = False
    while True:
        try:
            expect(title).to_have_text("dockwork users", timeout=1_000)
        except AssertionError as exc:
            lost = any(NETWORK_CHANGED in line for line in console.story)
            if lost and not reloaded:
                print(f"{service}: the page lost a request to a network change; reloading")  # noqa: T201
                console.forget(NETWORK_CHANGED)
                tab.reload()
                reloaded = True
                continue
            if time.monotonic() < deadline:
                continue
            logs = stack.compose("logs", "--no-color", "--tail", "40", service)
            pytest.fail(
                f"{exc}\n\nwhat the page saw:\n"
                + "\n".join(console.story or ["(nothing)"])
                + f"\n\n{service}'s last log lines:\n{logs.stdout}{logs.stderr}"
            )
        else:
            return


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, Console]]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    tab = context.new_page()
    console = Console(tab)
    yield tab, console
    context.close()


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


def test_an_error_on_the_page_fails_the_check(page: tuple[Page, Console]) -> None:
    """The console check is not a formality: an uncaught error and a console error count,
    a handled API error does not."""
    tab, console = page
    tab.set_content("<p>probe</p>")
    tab.evaluate("() => { setTimeout(() => { throw new Error('boom'); }); }")
    tab.evaluate(
        "() => console.error('Failed to load resource: the server responded with a status "
        "of 409 (Conflict)')"
    )
    tab.evaluate("() => console.error('something else broke')")
    tab.wait_for_timeout(200)
    with pytest.raises(AssertionError) as caught:
        console.check()
    assert "boom" in str(caught.value)
    assert "something else broke" in str(caught.value)
    assert "409" not in str(caught.value)


@pytest.mark.parametrize("stack", ["prod"], indirect=True)
def test_the_production_stack_in_a_browser(stack: Stack, page: tuple[Page, Console]) -> None:
    tab, console = page
    stack.inv("up")
    base = stack.app_url()

    tab.goto(base)
    expect_rendered(stack, "app", page)
    expect(tab.get_by_test_id("user-list")).to_be_visible()
    shot(tab, "prod-1-opened")

    email = f"browser-{uuid.uuid4().hex[:8]}@example.test"
    tab.get_by_test_id("name-input").fill("Ada Browser")
    tab.get_by_test_id("email-input").fill(email)
    tab.get_by_test_id("submit").click()
    row = tab.locator(f'[data-testid="user-row"][data-email="{email}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("Ada Browser")
    shot(tab, "prod-2-created")

    # the worker sends the welcome email; the page polls until it shows
    expect(row.get_by_test_id("email-status")).to_have_text("sent", timeout=30_000)
    shot(tab, "prod-3-sent")

    tab.get_by_test_id("name-input").fill("Ada Again")
    tab.get_by_test_id("email-input").fill(email)
    tab.get_by_test_id("submit").click()
    expect(tab.get_by_test_id("email-error")).to_contain_text("exists")
    expect(tab.locator(f'[data-testid="user-row"][data-email="{email}"]')).to_have_count(1)
    shot(tab, "prod-4-duplicate")

    tab.get_by_test_id("name-input").fill("Ada Invalid")
    tab.get_by_test_id("email-input").fill("not-an-email")
    tab.get_by_test_id("submit").click()
    # the API's sentence, never msgspec's wording with the regular expression
    expect(tab.get_by_test_id("email-error")).to_have_text(
        "Enter an email address like name@example.com."
    )
    shot(tab, "prod-5-invalid")

    # a client-side route is index.html; the API's own 404 stays JSON
    tab.goto(f"{base}/users/somewhere")
    expect(tab.get_by_test_id("app-title")).to_have_text("dockwork users")
    console.check()


@pytest.mark.parametrize("stack", ["dev"], indirect=True)
def test_the_dev_server_hot_reloads_an_edit(stack: Stack, page: tuple[Page, Console]) -> None:
    tab, console = page
    stack.env["COMPOSE_PROFILES"] = "web"
    up = stack.inv("up")  # builds the dev server's image
    assert "web → http://127.0.0.1:" in up.stdout, "inv up prints the dev server's URL"
    state = stack.states()["web"]
    assert (state["State"], state["Health"]) == ("running", "healthy")
    uid = stack.compose("exec", "-T", "web", "id", "-u").stdout.strip()
    assert uid not in {"", "0"}, "the dev server runs as a non-root user"
    # node_modules is a volume: the checkout holds at most its empty mount point
    on_host = stack.root / "src" / "web" / "node_modules"
    assert not on_host.exists() or not any(on_host.iterdir()), "packages in the checkout"
    vite = stack.compose("exec", "-T", "web", "test", "-x", "node_modules/.bin/vite")
    assert vite.returncode == 0, "the dev server's node_modules has no vite"

    web = stack.app_url("web")
    tab.goto(web)
    # a dev server's first page (slower when CI runs the other sessions beside this one)
    expect_rendered(stack, "web", page, timeout=60_000)
    # /api goes through Vite's proxy to the app
    email = f"hmr-{uuid.uuid4().hex[:8]}@example.test"
    tab.get_by_test_id("name-input").fill("Hot")
    tab.get_by_test_id("email-input").fill(email)
    tab.get_by_test_id("submit").click()
    row = tab.locator(f'[data-testid="user-row"][data-email="{email}"]')
    expect(row).to_be_visible(timeout=30_000)

    # state a full reload would lose: a typed, unsent value and a mark on window
    tab.get_by_test_id("name-input").fill("typed, not sent")
    tab.evaluate("() => { window.__dockworkMark = 'kept'; }")
    navigations: list[str] = []
    tab.on("framenavigated", lambda frame: navigations.append(frame.url))
    shot(tab, "dev-1-before-edit")

    source = stack.root / "src" / "web" / "src" / "App.tsx"
    text = source.read_text()
    assert ">dockwork users<" in text
    source.write_text(text.replace(">dockwork users<", ">dockwork users, hot<"))

    expect(tab.get_by_test_id("app-title")).to_have_text("dockwork users, hot", timeout=30_000)
    assert tab.evaluate("() => window.__dockworkMark") == "kept", "the page was reloaded"
    expect(tab.get_by_test_id("name-input")).to_have_value("typed, not sent")
    assert navigations == [], f"the page navigated: {navigations}"
    shot(tab, "dev-2-after-edit")
    console.check()


@pytest.mark.parametrize("stack", ["dev"], indirect=True)
def test_web_tasks_run_in_the_container_and_fail_with_the_tools(stack: Stack) -> None:
    """`inv web.*` on a real engine: the tools run in the Node image (this machine's Node
    is never used), files they write are the host user's, and their failures fail the task."""
    built = stack.inv("web.build")
    assert "--user" in built.stdout + built.stderr
    index = stack.root / "src" / "web" / "dist" / "index.html"
    assert index.stat().st_uid == os.getuid(), "the build output belongs to the host user"

    (stack.root / "src" / "web" / "src" / "broken.ts").write_text(
        'export const count: number = "three";\n'
    )
    lint = stack.inv("web.lint", check=False)
    assert lint.returncode != 0, lint.stdout + lint.stderr
    assert "broken.ts" in lint.stdout + lint.stderr
    assert "Traceback" not in lint.stderr


# -- the production image's layers ----------------------------------------------------


def build(root: Path, env: dict[str, str]) -> tuple[set[str], set[str]]:
    """Build the production image; the steps BuildKit ran and the ones it took from cache."""
    argv = ["docker", "compose", "--progress", "plain", "-f", "compose.yaml", "build", "app"]
    proc = subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names: dict[str, str] = {}
    cached: set[str] = set()
    for line in (proc.stdout + proc.stderr).splitlines():
        if m := re.match(r"#(\d+) \[(?:app )?(\S+ \d+/\d+)\] (?!FROM )(.*)", line):
            names[m[1]] = f"{m[2].split()[0]}: {m[3]}"
        elif m := re.match(r"#(\d+) CACHED", line):
            cached.add(m[1])
    ran = {name for step, name in names.items() if step not in cached}
    return ran, {names[step] for step in cached if step in names}


def steps(names: set[str], stage: str, fragment: str) -> set[str]:
    return {n for n in names if n.startswith(f"{stage}:") and fragment in n}


@pytest.mark.usefixtures("built_images")  # the build cache warm from this checkout's build
def test_a_frontend_change_rebuilds_only_the_node_stage(tmp_path: Path) -> None:
    copy_checkout(tmp_path)
    env = {
        **os.environ,
        "APP_IMAGE": f"dockwork-e2e-layers:{uuid.uuid4().hex[:10]}",
        "POSTGRES_PASSWORD": "build-only",
        "COMPOSE_PROJECT_NAME": f"dwlayers{uuid.uuid4().hex[:6]}",
    }
    try:
        build(tmp_path, env)  # the cache now holds this very checkout

        # changes of this run's own: the build cache is content-addressed, and an earlier
        # run's identical change would come from it
        mark = uuid.uuid4().hex
        app_tsx = tmp_path / "src" / "web" / "src" / "App.tsx"
        app_tsx.write_text(app_tsx.read_text().replace(">dockwork users<", f">users {mark}<"))
        ran, cached = build(tmp_path, env)
        assert steps(cached, "web", "npm ci"), "package-lock.json did not change"
        assert steps(ran, "web", "npm run build"), ran
        assert steps(ran, "runtime", "COPY --from=web"), ran
        for stage, fragment in (("builder", "uv sync"), ("runtime", "COPY src/app")):
            assert steps(cached, stage, fragment), f"{stage} {fragment} rebuilt: {ran}"

        settings = tmp_path / "src" / "app" / "settings.py"
        settings.write_text(settings.read_text() + f"\n# a Python-only change {mark}\n")
        ran, cached = build(tmp_path, env)
        assert not {n for n in ran if n.startswith("web:")}, f"the Node stage ran: {ran}"
        assert steps(cached, "web", "npm run build"), cached
        assert steps(ran, "runtime", "COPY src/app"), ran
    finally:
        subprocess.run(["docker", "image", "rm", "--force", env["APP_IMAGE"]], check=False)
        remove_project_images(env["COMPOSE_PROJECT_NAME"])
