"""The HTML report: self-contained, deterministic, and rendered by headless Chromium with no
console errors and every fleet shown."""

from __future__ import annotations

import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accelsim.cli import app
from accelsim.fleet import load_scenario
from accelsim.htmlreport import assumptions, render
from tests.conftest import CONFIGS

FLEET = CONFIGS / "fleet.yaml"
runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    r = runner.invoke(app, ["report", str(FLEET), "-o", str(out), "--samples", "8"])
    assert r.exit_code == 0, r.output
    return out


class _Parse(HTMLParser):
    """Fleet rows, external references and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.fleet_rows: list[str] = []
        self.external: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "tr" and a.get("data-fleet"):
            self.fleet_rows.append(a["data-fleet"] or "")
        for key in ("src", "href"):
            if a.get(key) and not (a[key] or "").startswith(("#", "data:")):
                self.external.append(f"{tag} {key}={a[key]}")
        if tag in ("link", "iframe", "object", "embed"):
            self.external.append(tag)


def test_page_is_self_contained_and_lists_every_fleet_and_assumption(page):
    html = page.read_text()
    p = _Parse()
    p.feed(html)
    sc = load_scenario(FLEET)
    assert sorted(p.fleet_rows) == sorted(m.name for m in sc.fleets)
    assert p.external == []  # nothing fetched: it opens offline, from an e-mail
    assert p.tags.count("svg") >= 2  # cost-performance and uncertainty plots inline
    for ref in sc.pool_of():
        assert f"<b>{ref}</b>" in html or ref in html
    assert "Ranking rule" in html and "P(row beats column)" in html
    # the verdict per purchase year leads, as in compare; one fleet table per year
    years = sorted({m.year or sc.year for m in sc.fleets})
    assert html.index('id="verdict"') < html.index('id="fleets-h"')
    assert re.findall(r'<li data-year="(\d+)">', html) == [str(y) for y in years]
    assert re.findall(r'<table id="fleets-(\d+)"', html) == [str(y) for y in years]
    # every sourced number of a profile is listed, with its source
    prof = __import__("accelsim.devices", fromlist=["load_device"]).load_device("h20")
    rows = assumptions(prof)
    assert len(rows) >= 20 and all(r["source"] for r in rows)
    assert rows[0]["source"] in html.replace("&#39;", "'").replace("&amp;", "&")


def test_page_opens_with_compares_verdict_for_each_purchase_year(page):
    import html as html_lib

    from accelsim.fleet import compare
    from accelsim.fleet.compare_verdict import annotate, verdicts

    text = page.read_text()
    sc = load_scenario(FLEET)
    res = compare(sc)
    annotate(sc, res.fleets, res.devices)
    lines = verdicts(sc, res.fleets)
    assert {v["year"] for v in lines} == {2025, 2026}
    for v in lines:  # the same line compare prints, under its year's anchor
        assert f'<li data-year="{v["year"]}">{html_lib.escape(v["line"])}</li>' in text
    assert text.index('id="verdict"') < text.index('id="fleets-h"')


def test_same_inputs_give_the_same_bytes(page):
    sc = load_scenario(FLEET)
    a = render(sc, FLEET, samples=8, seed=1)
    assert a == render(sc, FLEET, samples=8, seed=1)
    assert a != render(sc, FLEET, samples=8, seed=2)  # the seed reaches the draws
    assert re.search(r"uncertainty: 8 draws, seed 1", a)


def test_a_bad_output_path_fails_before_the_work(tmp_path):
    r = runner.invoke(app, ["report", str(FLEET), "-o", str(tmp_path / "no" / "r.html")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.stderr.startswith(f"{tmp_path / 'no' / 'r.html'}: --output: folder")


# --------------------------------------------------------------------- headless Chromium

@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium and ChromeDriver (README's install). CI must have them: there a
    missing browser is a failure, not a skip."""
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromedriver (README: install)")
        pytest.skip("chromium and chromedriver not installed (README: install)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


def _open(browser, path: Path) -> list[dict]:
    """Load a page; its console errors and warnings (SEVERE or WARNING)."""
    browser.get_log("browser")  # drop what an earlier page left
    browser.get(path.resolve().as_uri())
    return [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def test_the_harness_sees_console_errors(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>nope();</script>"
                   "<img src='missing.png'></body></html>")
    errors = _open(browser, bad)
    assert any("nope" in e["message"] for e in errors)
    assert any("missing.png" in e["message"] for e in errors)


def test_chromium_renders_the_report_without_errors_and_shows_every_fleet(browser, page):
    from selenium.webdriver.common.by import By

    assert _open(browser, page) == []
    sc = load_scenario(FLEET)
    rows = browser.find_elements(By.CSS_SELECTOR, "table[id^=fleets-] tbody tr")
    shown = {r.get_attribute("data-fleet") for r in rows if r.is_displayed()}
    assert shown == {m.name for m in sc.fleets}
    for r in rows:  # the name is in the row's first cell, as text the reader sees
        assert r.find_elements(By.TAG_NAME, "td")[0].text == r.get_attribute("data-fleet")
    for fig in ("cost-performance", "uncertainty-plot"):
        svg = browser.find_element(By.CSS_SELECTOR, f"#{fig} svg")
        assert svg.is_displayed() and svg.size["width"] > 300 and svg.size["height"] > 100
    assert browser.title == f"accelsim report: {sc.name}"
