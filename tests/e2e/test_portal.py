"""The customer portal in a real browser (Playwright driving Debian's headless Chromium) against the whole
local system: register, draw an area, order NDVI, watch it to SUCCESS, see the quicklook on the map and
download; an invalid area's reason; customers kept apart; an admin's usage limit; axe-core's accessibility
check. Screenshots of each step go to `test-artifacts/portal/` (git-ignored)."""

from __future__ import annotations

import re
import secrets
import shutil
import time
import zlib
from pathlib import Path

import pytest
import requests
from playwright import sync_api as playwright_api

from tests.e2e.test_order_service import inbox

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "portal"
AXE = REPO_ROOT / "portal" / "node_modules" / "axe-core" / "axe.min.js"
DEMO_AREA = "Sentinel-2 L2A (synthetic demo) — area 1"  # Bolzano
ORDER_TIMEOUT_S = 90
BOLZANO_TILE = "14/8708/5796"  # the zoom 14 tile holding the middle of the demo's Bolzano area
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def chromium_executable() -> str:
    """Debian's Chromium: its real binary (the `chromium` launcher script adds flags Playwright sets itself)."""
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("Chromium is missing: `make test` installs Debian's `chromium` package (as root)")


@pytest.fixture(scope="module")
def browser(local_system):
    if not (REPO_ROOT / "portal" / "dist" / "index.html").exists():
        pytest.fail("the portal is not built: run `make portal`")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable(), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def portal(browser, local_system):
    """A fresh browser context (no shared state) on the portal."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{local_system.api_url}/portal/")
    yield page
    context.close()


def opaque_pixels(png: bytes) -> int:
    """Opaque pixels of a tile (the tiles function's PNG: 8-bit RGBA, one IDAT, no filters)."""
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    at = png.index(b"IDAT")
    raw = zlib.decompress(png[at + 4:at + 4 + int.from_bytes(png[at - 4:at], "big")])
    rows = [raw[r * (width * 4 + 1) + 1:(r + 1) * (width * 4 + 1)] for r in range(height)]
    return sum(row[3::4].count(255) for row in rows)


def customer_token(local_system, email: str, password: str) -> str:
    answer = requests.post(f"{local_system.api_url}/api/v1/auth/token", timeout=30,
                           data={"grant_type": "password", "username": email, "password": password})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def serious_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def register_in_portal(page, local_system, name: str) -> tuple[str, str]:
    email, password = f"{name}-{secrets.token_hex(4)}@example.org", secrets.token_urlsafe(16)
    register = page.locator("form[aria-labelledby=register-h]")
    register.get_by_label("Name").fill(name)
    register.get_by_label("E-mail").fill(email)
    register.get_by_label("Password").fill(password)
    register.get_by_role("button", name="Register").click()
    (message,) = inbox(local_system, email, order_mails=False)
    token = re.search(r"Verification token: (\S+)", message["body"]).group(1)
    page.get_by_label("Verification token").fill(token)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("Client secret").wait_for()
    return email, password


def _mails_until(local_system, address: str, marker: str, timeout_s: float = 15) -> list[dict]:
    """The e-mails to `address` holding `marker`, waiting up to `timeout_s` for one."""
    deadline = time.monotonic() + timeout_s
    while True:
        messages = [m for m in requests.get(f"{local_system.endpoint_url}/_stratus/ses/messages",
                                            params={"to": address}, timeout=10).json()["messages"]
                    if marker in (m["body"] or "")]
        if messages or time.monotonic() > deadline:
            return messages
        time.sleep(0.2)


def sign_in(page, email: str, password: str) -> None:
    form = page.locator("form[aria-labelledby=signin-h]")
    form.get_by_label("E-mail").fill(email)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def draw_rectangle_in_the_middle(page) -> None:
    page.get_by_role("button", name="Draw a rectangle").click()
    box = page.locator("#map canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(cx - box["width"] * 0.15, cy - box["height"] * 0.15)
    page.mouse.click(cx + box["width"] * 0.15, cy + box["height"] * 0.15)
    page.get_by_text(re.compile(r"Area: \d+\.\d\d km²")).wait_for()


def choose_ndvi(page, start: str = "2022-06-01", end: str = "2022-07-01") -> None:
    page.get_by_label("Service", exact=True).select_option("ndvi-composite")
    page.get_by_label(re.compile("^start_date")).fill(start)
    page.get_by_label(re.compile("^end_date")).fill(end)


def watch_order(page) -> list[str]:
    """The statuses the order page showed, until it ended."""
    seen: list[str] = []
    deadline = time.monotonic() + ORDER_TIMEOUT_S
    status = page.locator("#order-status")
    while time.monotonic() < deadline:
        text = status.text_content(timeout=20_000)
        if not seen or seen[-1] != text:
            seen.append(text)
        if text in ("SUCCESS", "FAILED", "INVALID", "CANCELLED"):
            return seen
        time.sleep(0.2)
    pytest.fail(f"the order page still shows {seen[-1]} after {ORDER_TIMEOUT_S} s (saw {seen})")


@pytest.fixture(scope="module")
def first_customer():
    return {}


def test_a_customer_registers_orders_ndvi_watches_it_and_sees_the_product(portal, local_system, first_customer):
    page = portal
    shot(page, "01-start")
    assert serious_violations(page) == []
    # Given a customer who registers and signs in in the portal
    email, password = register_in_portal(page, local_system, "ada")
    first_customer.update(email=email, password=password)
    sign_in(page, email, password)
    # When they go to the demo data, draw an area and choose the NDVI service
    page.get_by_label("Go to the data of").select_option(label=DEMO_AREA)
    draw_rectangle_in_the_middle(page)
    choose_ndvi(page)
    # Then the area's size and the cost estimate show before ordering
    estimate = page.locator("#estimate")
    shot(page, "02-area-and-estimate")
    estimate.get_by_text("Estimated costs").wait_for()
    assert re.search(r"Area \d+\.\d\d km²", estimate.text_content())
    shot(page, "02-area-and-estimate")
    assert serious_violations(page) == []
    tile_answers: list[tuple[int, str]] = []
    page.on("response", lambda r: "/tiles/" in r.url and tile_answers.append((r.status, r.url.split("?")[0])))
    # When they order, the order's status moves on to SUCCESS
    page.get_by_role("button", name="Order", exact=True).click()
    statuses = watch_order(page)
    assert statuses[-1] == "SUCCESS", statuses
    assert set(statuses[:-1]) <= {"RECEIVED", "QUEUED", "RUNNING"}
    # And the product appears on the map as tiles of an XYZ service of its job
    quicklook = page.locator("#quicklook-state")
    page.wait_for_function("""() => { const d = document.getElementById('quicklook-state').dataset;
                                       return Number(d.tiles) > 0 && Number(d.tiles) === Number(d.started); }""")
    page.wait_for_load_state("networkidle")  # no tile still on its way
    assert quicklook.get_attribute("data-failed") == "0" and quicklook.get_attribute("data-tiles") == \
        quicklook.get_attribute("data-started")
    shot(page, "03-success-and-quicklook")
    assert tile_answers and all(status == 200 for status, _ in tile_answers), tile_answers
    first_customer["order_id"] = re.search(r"j-[0-9a-f]+", quicklook.text_content()).group(0)
    template = quicklook.get_attribute("data-url")
    tile = page.request.get(template.replace("{z}/{x}/{y}", BOLZANO_TILE))
    assert tile.ok and tile.headers["content-type"] == "image/png"
    assert opaque_pixels(tile.body()) > 1000  # the product's pixels, coloured
    assert page.request.get(template.split("?")[0].replace("{z}/{x}/{y}", BOLZANO_TILE)).status == 404  # no token
    assert serious_violations(page) == []
    # And its download link gives the GeoTIFF
    link = page.locator(".downloads a").first
    answer = page.request.get(link.get_attribute("href"))
    assert answer.ok and answer.body()[:4] in (b"II*\x00", b"MM\x00*")


def test_an_invalid_area_shows_its_reason(portal, local_system):
    page = portal
    email, _ = register_in_portal(page, local_system, "bob")
    # (bob forgot his password: he resets it in the portal)
    page.get_by_text("Reset your password").click()
    page.locator("form[aria-labelledby=reset-h]").get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Send a reset token").click()
    mail = next(m for m in _mails_until(local_system, email, "Reset token:"))
    confirm = page.locator("form[aria-labelledby=reset2-h]")
    confirm.get_by_label("E-mail").fill(email)
    confirm.get_by_label("Reset token").fill(re.search(r"Reset token: (\S+)", mail["body"]).group(1))
    new_password = secrets.token_urlsafe(16)
    confirm.get_by_label("New password").fill(new_password)
    confirm.get_by_role("button", name="Change password").click()
    page.get_by_text("The password has been changed.").wait_for()
    sign_in(page, email, new_password)
    # An area without data (Paris; the demo data is at Bolzano)
    page.get_by_label("Or type a bounding box (degrees)").fill("2.30, 48.85, 2.35, 48.87")
    page.get_by_role("button", name="Use").click()
    choose_ndvi(page)
    reason = page.locator("#estimate .problem")
    reason.wait_for()
    assert "no data" in reason.text_content().lower()
    page.get_by_role("button", name="Order", exact=True).click()
    assert watch_order(page)[-1] == "INVALID"
    assert "no data" in page.locator("#order-reason").text_content().lower()
    shot(page, "04-invalid-area")


def test_a_second_customer_sees_none_of_the_first_ones_orders_on_a_phone(browser, local_system, first_customer):
    if not first_customer:
        pytest.skip("needs the first customer's order (the test above)")
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{local_system.api_url}/portal/")
    email, password = register_in_portal(page, local_system, "eve")
    sign_in(page, email, password)
    page.get_by_role("button", name="My orders").click()
    page.get_by_text("No orders yet.").wait_for()
    shot(page, "05-second-customer-phone")
    assert serious_violations(page) == []
    # nor reaches it by its id, on either API
    eve = {"Authorization": f"Bearer {customer_token(local_system, email, password)}"}
    order_id = first_customer["order_id"]
    assert requests.get(f"{local_system.api_url}/api/v1/orders/{order_id}", headers=eve, timeout=30).status_code == 404
    quicklook = requests.post(f"{local_system.api_url}/openeo/1.2/services", timeout=30, headers={
        "Authorization": eve["Authorization"].replace("Bearer ", "Bearer basic//")}, json={
        "type": "XYZ", "process": {"process_graph": {"r": {"process_id": "load_result", "arguments": {"id": order_id},
                                                           "result": True}}}})
    assert quicklook.status_code == 404 and quicklook.json()["code"] == "JobNotFound"
    # while the first customer still sees theirs
    token = customer_token(local_system, first_customer["email"], first_customer["password"])
    mine = requests.get(f"{local_system.api_url}/api/v1/orders", headers={"Authorization": f"Bearer {token}"},
                        timeout=30).json()["orders"]
    assert len(mine) == 1
    context.close()


def test_an_admin_changes_a_customers_usage_limit(portal, local_system, first_customer):
    if not first_customer:
        pytest.skip("needs the first customer (the test above)")
    page = portal
    sign_in(page, "admin@stratus.example", local_system.password)
    page.get_by_role("button", name="Administration").click()
    page.locator("tr", has_text=first_customer["email"]).get_by_role("button").click()
    limits = page.locator("form[aria-label='Set a usage limit']")
    limits.get_by_label("Service").select_option("ndvi-composite")
    limits.get_by_label("Orders at most").fill("2")
    limits.get_by_label("Per seconds").fill("3600")
    limits.get_by_role("button", name="Set usage limit").click()
    page.locator("#usage-limits").get_by_text("ndvi-composite: 2 orders per 3600 s").wait_for()
    shot(page, "06-admin-usage-limit")
    assert serious_violations(page) == []
