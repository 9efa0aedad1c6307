"""/docs serves Swagger UI from the service itself: no script, style or image from another origin
on the origin that also serves /admin, and the page works without internet."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.anyio


async def test_the_api_page_loads_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
    for source in sources:
        asset = await client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "http" not in policy
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 200


def test_the_api_page_renders_in_chromium_offline(browser: Browser, demo_server: str) -> None:
    """In a real browser, every request the page makes goes to the service, and the API renders."""
    context = browser.new_context(base_url=demo_server)
    page = context.new_page()
    origins: set[str] = set()
    page.on("request", lambda request: origins.add(urlsplit(request.url).netloc))
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Vitamin D and leg cramps")
    expect(page.locator(".opblock").first).to_be_visible()
    assert origins == {urlsplit(demo_server).netloc}
    context.close()
