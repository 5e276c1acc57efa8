"""``GET /v2/docs`` in a real headless Chromium (Debian's package, driven by Playwright): the page renders from the
service's own assets, lists the vmbox operations, and "Try it out" of ``GET /vmboxes`` with a token works against
the running service."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from helpers import Api, create_box
from playwright.async_api import BrowserContext, Page, async_playwright, expect

# Flags for a browser run as root in a container, with nothing fetched from outside.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Chromium is not installed: the API documentation page is tested in a real browser. Run "
            "scripts/bootstrap as root (it installs Debian's chromium package) or `apt-get install chromium`."
        )
    return found


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile for every run
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield context
        finally:
            await context.close()


async def open_docs(browser: BrowserContext, client: TestClient[Any, Any]) -> tuple[Page, list[str]]:
    """The docs page, with every request the page makes to another host refused and recorded."""
    base = str(client.make_url("/"))
    own_host = urlsplit(base).netloc
    foreign: list[str] = []

    async def only_local(route: Any) -> None:
        if urlsplit(route.request.url).netloc != own_host:
            foreign.append(route.request.url)
            await route.abort()
        else:
            await route.continue_()

    page = await browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.route("**/*", only_local)
    await page.goto(str(client.make_url("/v2/docs")))
    return page, foreign


async def test_the_docs_page_renders_from_local_assets_and_lists_the_vmbox_operations(
    browser: BrowserContext, client: TestClient[Any, Any]
) -> None:
    page, foreign = await open_docs(browser, client)
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("kazoo_vm")
    vmbox_ops = page.locator("#operations-tag-vmboxes")
    await expect(vmbox_ops).to_be_visible()
    paths = page.locator(".opblock-summary-path")
    await expect(paths.first).to_be_visible()
    shown = await paths.all_inner_texts()
    flat = {text.replace("\u200b", "").strip() for text in shown}
    assert "/v2/accounts/{account_id}/vmboxes" in flat
    assert "/v2/accounts/{account_id}/vmboxes/{box_id}" in flat
    methods = await page.locator("#operations-vmboxes-getAccountsAccountIdVmboxesBoxId .opblock-summary-method").all()
    assert [await method.inner_text() for method in methods] == ["GET"]
    assert foreign == []


async def test_try_it_out_lists_the_boxes_with_a_token_and_without_one_shows_kazoos_401(
    browser: BrowserContext, client: TestClient[Any, Any], api: Api
) -> None:
    await create_box(api, name="Browser Box", mailbox="5100")
    page, foreign = await open_docs(browser, client)
    operation = page.locator("#operations-vmboxes-getAccountsAccountIdVmboxes")
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    await operation.locator('tr[data-param-name="account_id"] input').fill(api.account.id)
    status = operation.locator(".live-responses-table .response .response-col_status").first
    body = operation.locator(".live-responses-table .response-col_description .microlight").first

    await operation.get_by_role("button", name="Execute").click()
    await expect(status).to_have_text("401")
    await expect(body).to_contain_text("invalid_credentials")

    # Authorize with the token, as a user would, and send the request again.
    await page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux")
    token_form = dialog.locator(".auth-container").filter(has_text="X-Auth-Token")
    await token_form.locator("input").fill(api.account.token)
    await token_form.locator("button.modal-btn.authorize").click()
    await dialog.locator("button.btn-done").first.click()
    await operation.get_by_role("button", name="Execute").click()
    await expect(status).to_have_text("200")
    await expect(body).to_contain_text("Browser Box")
    await expect(body).to_contain_text('"status": "success"')
    assert foreign == []


def test_without_chromium_the_browser_test_fails_and_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"Chromium is not installed.*apt-get install chromium"):
        chromium_path()
