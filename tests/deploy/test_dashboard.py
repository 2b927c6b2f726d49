"""The dashboard: its JSON from the registry and fleet database, and the page in headless Chromium.

The browser test drives Debian's chromium through Selenium and chromedriver (``.ci/run`` installs
both where it can): it checks that the page shows the real releases, rollout and robots, that it
follows a new check-in without a reload, and keeps a screenshot in ``test-artifacts/``.
"""

import shutil
import time
from pathlib import Path

import httpx
import pytest

from academy.deploy.server import ServerThread, create_app
from academy.release.publish import ReleaseHome

PROFILE = "ah1-cm3"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


@pytest.fixture()
def fleet_server(deploy_home, tmp_path):
    """Releases 1 and 2, four robots on release 1, a rollout of release 2 with a canary of one."""
    home = ReleaseHome(tmp_path / "home")
    home.init()
    for n in (1, 2):
        home.publish(str(deploy_home.bundle_dir(n) / "policy"), deploy_home.registry.get(n)["exam"], note=f"policy {n}")
    with ServerThread(create_app(home.home)) as srv:
        http = httpx.Client(base_url=srv.url, timeout=30)
        for i, battery in enumerate((0.9, 0.55, 0.3, 0.12)):
            http.post("/v1/checkin", json={"serial": f"AH1-{i + 1:04d}", "profile": PROFILE, "installed_release": 1,
                                           "battery": battery, "agent_state": "idle",
                                           "slot_state": {"active": "a", "a": 1}}).raise_for_status()
        for i in range(4):
            http.post("/v1/health", json={"serial": f"AH1-{i + 1:04d}", "release": 1, "kind": "shift", "ok": True,
                                          "episodes": 8, "successes": 5 + i % 3}).raise_for_status()
        http.post("/v1/rollouts", json={"release": 2, "profile": PROFILE, "canary_share": 0.25,
                                        "min_episodes": 4}).raise_for_status()
        srv.http = http
        yield srv


def test_dashboard_json_is_the_registry_and_the_fleet(fleet_server):
    s = fleet_server.http.get("/v1/dashboard").json()
    assert [r["number"] for r in s["releases"]] == [2, 1]
    assert s["releases"][0]["lineage"] == [2, 1] and s["releases"][0]["note"] == "policy 2"
    assert "handover" in s["releases"][0]["skills"]
    (rollout,) = s["rollouts"]
    assert rollout["release"] == 2 and rollout["previous"] == 1 and rollout["state"] == "running"
    assert [c["robots"] for c in rollout["cohorts"]][0] == 1 and rollout["fleet"] == 4
    robots = {r["serial"]: r for r in s["robots"]}
    assert robots["AH1-0004"]["battery"] == pytest.approx(0.12)
    assert robots["AH1-0002"]["last_shifts"][0] == {**robots["AH1-0002"]["last_shifts"][0], "episodes": 8,
                                                    "successes": 6, "release": 1}
    page = fleet_server.http.get("/dashboard")
    assert page.status_code == 200 and "/v1/dashboard" in page.text
    assert fleet_server.http.get("/", follow_redirects=False).headers["location"] == "/dashboard"


def _chrome():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no chromium and chromedriver (Debian: apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


def _wait_for(browser, css, text, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        shown = browser.find_element("css selector", css).text
        if text in shown:
            return shown
        time.sleep(0.2)
    raise AssertionError(f"{css} never showed {text!r}; it shows: {shown!r}")


def test_dashboard_in_headless_chromium_shows_real_data_and_updates_live(fleet_server):
    browser = _chrome()
    try:
        browser.get(f"{fleet_server.url}/dashboard")
        releases = _wait_for(browser, "#releases tbody", "2 ← 1")
        assert "policy 2" in releases and "handover" in releases
        rollouts = _wait_for(browser, "#rollouts tbody", "running")
        assert "1 → 2" in rollouts and "ah1-cm3" in rollouts
        robots = _wait_for(browser, "#robots tbody", "AH1-0004")
        assert "12%" in robots and "6/8 (r1)" in robots
        # a robot checks in: the page shows it at its next poll, without a reload
        fleet_server.http.post("/v1/checkin", json={"serial": "AH1-0077", "profile": PROFILE, "installed_release": 1,
                                                    "battery": 0.42, "charging": True}).raise_for_status()
        row = _wait_for(browser, "#robots tbody", "AH1-0077")
        assert "42%" in row
        assert "cannot reach" not in browser.find_element("css selector", "#status").text
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        browser.quit()
