"""The course website: the build stops on a broken reference or a missing image, and every page works in a browser.

``make test-book`` runs these after ``make book`` has built ``build/book/``; they need Debian's Chromium
(``apt-get install chromium``) and the ``book`` extra. ``make test`` leaves them out.

Each page is opened in headless Chromium from a server on 127.0.0.1. Requests that leave the site are
refused, as they would fail on a machine without a network: the three badges under each notebook's title
are the only images that do, and they are counted, not checked.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "book"
SHOTS = ROOT / "build" / "book-screenshots"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# --- the build ------------------------------------------------------------------------------------------


def _build(source: Path, out: Path):
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT / "docs"), "-W", "--keep-going", "-q"]
    return subprocess.run([*command, str(source), str(out)], capture_output=True, text=True)


@pytest.fixture
def small_course(tmp_path):
    """A copy of the site's sources with the student copies as its notebooks (no outputs, so it builds fast).

    It builds as it is, so a failure after an edit is that edit's.
    """
    source = tmp_path / "src"
    shutil.copytree(ROOT / "docs", source / "docs", ignore=shutil.ignore_patterns("conf.py", "__pycache__"))
    shutil.copytree(ROOT / "build" / "student", source / "notebooks", ignore=shutil.ignore_patterns("tests"))
    shutil.copytree(ROOT / "build" / "student", source / "build" / "student")
    shutil.copy2(ROOT / "build" / "medkit-student.zip", source / "build")
    shutil.copy2(ROOT / "README.md", source)
    built = _build(source, tmp_path / "out")
    assert built.returncode == 0, built.stderr
    return source, tmp_path / "out2"


@pytest.mark.parametrize(
    "addition, named",
    [("See [notebook 42](../notebooks/42_missing.ipynb).", "42_missing"), ("![a film](figures/missing.png)", "missing.png")],
    ids=["broken reference", "missing figure"],
)
def test_the_build_stops_on(small_course, addition, named):
    source, out = small_course
    page = source / "docs" / "teaching.md"
    page.write_text(page.read_text() + f"\n{addition}\n")
    built = _build(source, out)
    assert built.returncode != 0 and named in built.stderr, built.stderr


def test_the_site_has_every_notebook_and_student_copy():
    assert (SITE / "index.html").is_file(), "run make book first"
    for nb in NOTEBOOKS:
        assert (SITE / "notebooks" / f"{nb.stem}.html").is_file(), nb.name
    downloads = (SITE / "docs" / "downloads.html").read_text()
    for nb in NOTEBOOKS:
        assert re.search(rf'href="[^"]*/{nb.name}"', downloads), f"no student copy of {nb.name} to download"
    assert re.search(r'href="[^"]*/medkit-student.zip"', downloads), "no zip of the student folder with its checks"


# --- in a browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site():
    """The built site, served on 127.0.0.1 for the module's tests, and stopped after them."""
    from conftest import serve

    if not (SITE / "index.html").is_file():
        pytest.fail("no site in build/book: run make book (make test-book does)")
    with serve(SITE) as url:
        yield url + "/"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        pytest.fail(f"no Chromium at {chromium}: apt-get install chromium, or set CHROMIUM=/path/to/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


PAGES = ["index.html", "docs/index.html", "docs/teaching.html", "docs/downloads.html"] + [
    f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS
]


def _visit(browser, url, site):
    """Open ``url``; return the page and what went wrong on the way (JavaScript errors, failed requests)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems, offsite = [], []

    def route(request_route):
        if request_route.request.url.startswith(site):
            request_route.continue_()
        else:
            offsite.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda err: problems.append(f"JavaScript error: {err}"))
    # A refused off-site request also logs "Failed to load resource"; on-site ones are caught by status below.
    page.on("console", lambda msg: problems.append(f"console error: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    if page.evaluate("() => !!window.MathJax && !!MathJax.startup"):
        page.evaluate("() => MathJax.startup.promise")
    return page, problems, offsite


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders(browser, site, path):
    page, problems, offsite = _visit(browser, site + path, site)
    try:
        assert not problems, problems
        # Math: every formula was typeset, and no raw TeX delimiters are left in the text.
        math = page.evaluate("() => [...document.querySelectorAll('.math')].map(e => !!e.querySelector('mjx-container'))")
        assert all(math), f"{math.count(False)} of {len(math)} formulas not typeset"
        text = page.evaluate(  # the prose: code listings may hold TeX on purpose (a plot's axis label)
            "() => { const b = document.body.cloneNode(true); b.querySelectorAll('pre, code').forEach(e => e.remove());"
            " return b.textContent; }"
        )
        raw = re.findall(r"\$\$|\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$", text)
        assert not raw, f"raw TeX on the page: {raw[:3]}"
        # Images: every image of the site itself has loaded; off-site ones (the badges) are refused here.
        images = page.evaluate(
            "() => [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0}))"
        )
        broken = [i["src"] for i in images if i["src"].startswith(site) and not i["ok"]]
        assert not broken, f"images that did not load: {broken}"
        if path.startswith("notebooks/") and not path.startswith("notebooks/00"):  # 00 has no figure and no math
            assert sum(i["src"].startswith(site) for i in images) >= 1, "a notebook page without its figures"
            assert len(math) > 0, "a notebook page without math"
        # Links: every link within the site reaches a file, and an anchor reaches an element with that id.
        links = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
        for link in {l for l in links if l.startswith(site)}:
            target, fragment = urldefrag(link)
            file = SITE / urlparse(target).path.lstrip("/")
            if file.is_dir():
                file = file / "index.html"
            assert file.is_file(), f"broken link on {path}: {link}"
            if fragment and file.suffix == ".html":
                assert re.search(rf'id="{re.escape(fragment)}"', file.read_text()), f"broken anchor on {path}: {link}"
    finally:
        page.close()


def test_screenshots_for_review(browser, site):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for path, name in [("docs/index.html", "landing.png"), ("notebooks/04_cnn.html", "notebook_04.png")]:
        page, problems, _ = _visit(browser, urljoin(site, path), site)
        try:
            assert not problems, problems
            page.screenshot(path=str(SHOTS / name))
        finally:
            page.close()
        assert (SHOTS / name).stat().st_size > 10_000, f"{name} looks empty"
