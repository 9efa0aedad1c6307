"""The demo page in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no
browser is ever downloaded): it shows the service's cards, sends feedback, and fires the order
hooks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from cds_service.demo import patients

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def page(browser: Browser, demo_server: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=demo_server)
    page = context.new_page()
    page.goto("/demo")
    expect(page.locator("body[data-ready=true]")).to_be_attached(timeout=15000)
    yield page
    context.close()


def shown_cards(page: Page, box: str = "#cards") -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        f"{box} article.card",
        "cards => cards.map(c => ({kind: c.dataset.kind, indicator: c.querySelector('.indicator').textContent,"
        " summary: c.querySelector('.summary').textContent}))",
    )


def choose(page: Page, patient: str) -> dict[str, Any]:
    """Pick a patient; the hook response as it crossed the network (not as the page shows it)."""
    with page.expect_response(lambda r: r.url.endswith("/cds-services/vitamin-d-cramps")) as response:
        page.select_option("#patient-picker", patient)
    assert response.value.status == 200
    expect(page.locator("#cards-status")).not_to_have_text("Calling vitamin-d-cramps ...")
    return response.value.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "patient", ["demo-deficient-cramps", "demo-high-supplement", "demo-calcitriol-only", "demo-insufficient-stale"]
)
def test_cards_shown_are_the_services(page: Page, patient: str) -> None:
    response = choose(page, patient)
    expected = [
        {"kind": c["source"]["topic"]["code"], "indicator": c["indicator"], "summary": c["summary"]}
        for c in response["cards"]
    ]
    assert expected and shown_cards(page) == expected
    assert page.locator("#banner").text_content()
    if patient == "demo-calcitriol-only":
        expect(page.locator("#chart")).to_have_text("No 25-hydroxyvitamin D result on file.")
    else:
        assert page.locator("#chart svg circle").count() >= 2  # a trend, with the profile's bands
        expect(page.locator("#chart svg")).to_contain_text("deficient")


def test_accept_and_override_send_feedback(page: Page, demo_server: str) -> None:
    choose(page, "demo-deficient-cramps")
    check = page.locator("article.card[data-kind=electrolytes-check]")
    with page.expect_response(lambda r: r.url.endswith("/feedback")) as accepted:
        check.get_by_role("button", name="Accept: Order serum magnesium").click()
    assert accepted.value.status == 200 and accepted.value.json()["new"] == 1
    expect(check.locator(".feedback-status")).to_have_text("Feedback recorded: accepted.")

    deficient = page.locator("article.card[data-kind=vitd-deficient]")
    deficient.get_by_label("Override reason").select_option("patient-declined")
    with page.expect_response(lambda r: r.url.endswith("/feedback")) as overridden:
        deficient.get_by_role("button", name="Override").click()
    assert overridden.value.status == 200
    sent = json.loads(overridden.value.request.post_data or "{}")["feedback"][0]
    assert sent["outcome"] == "overridden" and sent["overrideReason"]["reason"]["code"] == "patient-declined"
    expect(deficient.locator(".feedback-status")).to_have_text("Feedback recorded: overridden.")


def test_order_sign_with_a_duplicate_25ohd_order(page: Page) -> None:
    choose(page, "demo-deficient-cramps")  # a 25(OH)D result 12 days ago
    with page.expect_response(lambda r: r.url.endswith("/vitamin-d-order-select")):
        page.get_by_role("button", name="Draft 25(OH)D test").click()
    with page.expect_response(lambda r: r.url.endswith("/vitamin-d-order-sign")) as signed:
        page.get_by_role("button", name="Sign orders").click()
    assert signed.value.status == 200
    expect(page.locator("#order-cards article.card[data-kind=vitd-duplicate-order]")).to_have_count(1)
    card = page.locator("#order-cards article.card").first
    expect(card.locator(".summary")).to_contain_text("25(OH)D already measured 12 days ago")
    card.get_by_text("What it would do").click()
    expect(card.locator("pre")).to_contain_text('"resourceId": "ServiceRequest/draft-1"')


def test_keyboard_and_labels(page: Page) -> None:
    expect(page.get_by_label("Patient", exact=True)).to_be_visible()
    page.get_by_label("Patient", exact=True).focus()
    page.keyboard.press("ArrowDown")  # a native select: the keyboard moves to the next patient
    expect(page.locator("#patient-about")).to_have_text(patients()[1]["about"])


def test_screenshot(page: Page, tmp_path: Path) -> None:
    """The README's docs/demo.png is this screenshot (UPDATE_SCREENSHOT=1 writes it there): the
    first card, as the service sent it, lies inside the part of the page the screenshot takes."""
    first = choose(page, "demo-deficient-cramps")["cards"][0]
    card = page.locator("article.card").first
    expect(card.locator(".summary")).to_have_text(first["summary"])
    box, viewport = card.bounding_box(), page.viewport_size
    assert box is not None and viewport is not None
    assert box["y"] >= 0 and box["y"] + min(box["height"], 120) <= viewport["height"]  # its summary at least
    path = ROOT / "docs" / "demo.png" if os.environ.get("UPDATE_SCREENSHOT") else tmp_path / "demo.png"
    page.screenshot(path=str(path), full_page=False)


def test_the_page_loads_nothing_from_elsewhere(browser: Browser, demo_server: str) -> None:
    context = browser.new_context(base_url=demo_server)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto("/demo")
    expect(page.locator("body[data-ready=true]")).to_be_attached(timeout=15000)
    context.close()
    assert requested and all(url.startswith(demo_server) for url in requested)
    assert httpx.get(f"{demo_server}/demo/static/demo.js").status_code == 200


def test_a_card_opens_the_trend_in_one_click(page: Page) -> None:
    """The demo's SMART link: no EHR to launch it, so the app's demo mode on the patient shown, at
    1024 px as an EHR's frame may be; everything from the service itself, no error in its console.
    The README's docs/smart-app.png is this page (UPDATE_SCREENSHOT=1 writes it there)."""
    response = choose(page, "demo-deficient-cramps")
    (link,) = [x for x in response["cards"][0]["links"] if x["type"] == "smart"]
    assert link["url"].endswith("/smart/launch") and link["label"] == "Vitamin D and electrolyte trend"
    opened = page.locator("article.card").first.locator("a.smart-link")
    expect(opened).to_have_attribute("href", "/smart/demo/demo-deficient-cramps")
    with page.context.expect_page() as popup:
        opened.click()
    trend = popup.value
    requested: list[str] = []
    errors: list[str] = []
    trend.on("request", lambda r: requested.append(r.url))
    trend.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    trend.set_viewport_size({"width": 1024, "height": 900})
    trend.reload()
    expect(trend.locator("svg[data-analyte=vitamin_d] .point").first).to_be_attached()
    points = trend.eval_on_selector_all("svg[data-analyte=vitamin_d] .point", "els => els.map(e => e.dataset.status)")
    assert "deficient" in points and "Demo" in trend.inner_text("header")
    assert requested and all(url.startswith(page.url.split("/demo")[0]) for url in requested) and not errors
    width = trend.evaluate("document.documentElement.scrollWidth")
    assert width <= 1024  # readable at 1024 px: nothing to scroll sideways
    path = ROOT / "docs" / "smart-app.png" if os.environ.get("UPDATE_SCREENSHOT") else None
    if path is not None:
        trend.screenshot(path=str(path), full_page=False)


RUN = "window.__pwned=1"
HOSTILE_DETAIL = "\n".join(
    [
        f'**Bold** <img src=x onerror="{RUN}"> [click](javascript:{RUN}) <script>{RUN}</script>',
        f"<https://a/[b](https://x/autofocus/onfocus={RUN}//)> and <https://example.org/ok>",
        "",
        f"| test | <img src=x onerror={RUN}> |",
        "| --- | --- |",
        "| `<b>code</b>` | a \\| b |",
        "",
        f"- <svg onload={RUN}>",
    ]
)


def test_hostile_card_and_fhir_text_never_runs_in_the_page(page: Page) -> None:
    """A card as a hostile or broken EHR-side service could send it, and a record whose FHIR text is
    hostile: everything is shown as text, no element is made from it, and no link leaves http(s)."""
    card = {
        "uuid": "0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a",
        "summary": f"<img src=x onerror={RUN}>",
        "detail": HOSTILE_DETAIL,
        "indicator": "warning",
        "source": {"label": "<b>source</b>", "url": f"javascript:{RUN}", "topic": {"code": "vitd-deficient"}},
        "links": [{"label": f"<img src=x onerror={RUN}>", "url": f"javascript:{RUN}", "type": "absolute"}],
        "overrideReasons": [{"code": "x", "display": f"<img src=x onerror={RUN}>"}],
        "suggestions": [{"label": f"<img src=x onerror={RUN}>", "uuid": "1d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a"}],
        "selectionBehavior": "any",
    }
    page.route("**/cds-services/vitamin-d-cramps", lambda route: route.fulfill(json={"cards": [card]}))

    def hostile_record(route: Any) -> None:
        record = route.fetch().json()
        for resource in record if isinstance(record, list) else [e["resource"] for e in record.get("entry", [])]:
            if resource.get("resourceType") == "Observation":
                resource["valueQuantity"]["unit"] = f"<img src=x onerror={RUN}>"
                resource["valueQuantity"]["code"] = resource["valueQuantity"]["unit"]
                resource["effectiveDateTime"] += f"<img src=x onerror={RUN}>"
        route.fulfill(json=record)

    page.route("**/demo/patients/demo-normal", hostile_record)
    choose(page, "demo-normal")
    expect(page.locator("#cards .summary")).to_have_text(f"<img src=x onerror={RUN}>")  # shown as text
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script, main iframe, #cards svg").count() == 0
    hrefs = page.eval_on_selector_all("main a", "links => links.map(a => a.getAttribute('href'))")
    assert hrefs and all(h.startswith("https://") for h in hrefs), hrefs
    detail = page.locator("#cards .detail")
    expect(detail.locator("strong").first).to_have_text("Bold")  # Markdown still works
    expect(detail.locator("td").nth(1)).to_have_text("a | b")
    expect(detail.locator("code").first).to_have_text("<b>code</b>")
