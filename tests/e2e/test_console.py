"""The web console in a real headless Chromium against the real server (``skulens serve`` on a loopback
port, API keys on): enrol a SKU through the pages, find it, see its thumbnails, edit it, delete a
photo, a checkout key that cannot delete, a counter photo recognised on the lane page with its total,
a lane background set from the page, a lane's item area set from the page (and only seen with a
checkout key), the camera, and /docs rendering with no network.

As in test_checkout.py, the model is untrained and the threshold 0.999: each product is enrolled with
the very crop the server will cut from the counter photo, so only an exact match is known."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_jpeg
from tests.e2e.browser import launch, off_network, why_no_browser
from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
_no_browser = why_no_browser()
if _no_browser:
    pytest.skip(f"no browser for the console tests: {_no_browser}", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

TIMEOUT_MS = 30_000  # a loaded CI machine: inference on a counter photo may take seconds
expect.set_options(timeout=TIMEOUT_MS)

MERCH, LANE = "merch-secret-00000000002", "lane-secret-000000000001"
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
SCREENSHOTS_ENV = "SKULENS_SCREENSHOTS"  # a folder: the screenshots test writes its PNGs there too


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("console")
    keys = root / "keys"
    keys.write_text(f"checkout {LANE}\nmerchandiser {MERCH}\n")
    server = Server(
        root / "data",
        tiny_model_dir,
        ["--threshold", "0.999", "--api-keys", str(keys)],
        env={"SKULENS_CATALOGUE_VIEWS": "0"},
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    refused = off_network(page, server.url)
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()
    assert not refused, f"the console asked for off-server URLs: {refused}"
    assert not errors, f"JavaScript errors: {errors}"


def open_console(page, server, key: str | None, hash_: str = "#/skus") -> None:
    page.goto(f"{server.url}/{hash_}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    if key is not None:
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Use key").click()
        expect(page.locator("#key-status")).to_contain_text("Role:")


def http(server, key=MERCH):
    return server.client(headers={"X-API-Key": key})


def drop_files(page, selector: str, files: list[tuple[str, bytes]]) -> None:
    """Drop files on an element as a drag from the desktop would (a DataTransfer of Files)."""
    payload = [(name, base64.b64encode(data).decode()) for name, data in files]
    page.eval_on_selector(
        selector,
        """(zone, files) => {
        const transfer = new DataTransfer();
        for (const [name, b64] of files) {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
        }
        zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }""",
        payload,
    )


def test_docs_render_with_no_network(page, server):
    page.goto(f"{server.url}/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/v1/checkout")
    page.locator(".swagger-ui button.authorize").click()  # the key can be given to "Try it out"
    expect(page.locator(".swagger-ui .modal-ux")).to_contain_text("X-API-Key")
    # the page fixture asserts that nothing off the server was asked for


def test_enrol_find_and_see_thumbnails(page, server):
    open_console(page, server, MERCH)
    page.get_by_label("SKU id").fill("arla-milk-1l")
    page.get_by_label("Name").fill("Arla Milk 1L")
    page.get_by_label("Price").fill("1.35")
    page.get_by_role("button", name="Create SKU").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Arla Milk 1L")
    expect(page.locator("#thumbs-empty")).to_be_visible()

    page.get_by_label("Choose photos").set_input_files(
        [
            {"name": "milk1.jpg", "mimeType": "image/jpeg", "buffer": make_jpeg(11, size=(640, 480))},
            {"name": "milk2.jpg", "mimeType": "image/jpeg", "buffer": make_jpeg(12, size=(480, 640))},
        ]
    )
    expect(page.locator("#alert")).to_have_text("2 photos added.")
    drop_files(
        page, "#dropzone", [("milk3.jpg", make_jpeg(13)), ("broken.jpg", b"not a photo"), ("milk4.jpg", make_jpeg(14))]
    )
    expect(page.locator("#alert")).to_have_text("2 photos added.")
    expect(page.locator("#thumbs img[data-loaded=true]")).to_have_count(4)
    uploads = page.locator("#uploads li")  # one line per file, with its progress bar and outcome
    expect(uploads).to_have_count(5)
    expect(uploads.filter(has_text="added as photo")).to_have_count(4)
    expect(uploads.filter(has_text="broken.jpg")).to_contain_text("could not read an image")
    values = page.eval_on_selector_all("#uploads progress", "bars => bars.map((b) => b.value)")
    assert values.count(1) >= 4, values
    widths = page.eval_on_selector_all("#thumbs img", "imgs => imgs.map((i) => [i.naturalWidth, i.naturalHeight])")
    assert all(0 < max(w, h) <= 256 for w, h in widths), widths  # thumbnails, not the stored photos
    expect(page.locator("#sku-summary")).to_contain_text("4 reference photos")
    expect(page.locator("#server-info")).to_contain_text("1 SKUs, 4 reference images")

    page.get_by_role("link", name="← Catalogue").click()
    page.get_by_label("Search SKUs").fill("MILK")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#results-summary")).to_have_text("1–1 of 1 matching “MILK”")
    row = page.locator("#sku-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Arla Milk 1L")
    expect(row).to_contain_text("1.35 EUR")
    page.get_by_label("Search SKUs").fill("tea")
    page.keyboard.press("Enter")
    expect(page.locator("#results-summary")).to_have_text("No SKU matches “tea”.")


def test_new_sku_form_does_not_overwrite_an_existing_sku(page, server):
    existing = {"name": "Butter 500g", "price": "3.10", "attributes": {"grams": 500, "salted": True, "note": None}}
    with http(server) as api:
        assert api.put("/v1/skus/butter-500", json=existing).status_code in (200, 201)
    open_console(page, server, MERCH)
    page.get_by_label("SKU id").fill("butter-500")
    page.get_by_label("Name").fill("Something else")
    page.get_by_role("button", name="Create SKU").click()
    expect(page.locator("#alert")).to_contain_text("SKU butter-500 already exists")
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalogue")  # stayed on the form
    with http(server) as api:
        kept = api.get("/v1/skus/butter-500").json()
    assert {k: kept[k] for k in existing} == existing
    page.locator("#alert").get_by_role("link", name="Open SKU butter-500").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Butter 500g")


def test_pages_of_the_catalogue(page, server):
    with http(server) as api:
        for i in range(30):
            assert api.put(f"/v1/skus/page-{i:02d}", json={"name": f"Paged {i}"}).status_code == 201
    open_console(page, server, MERCH, "#/skus?q=page-")
    expect(page.locator("#results-summary")).to_have_text("1–25 of 30 matching “page-”")
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#results-summary")).to_have_text("26–30 of 30 matching “page-”")
    expect(page.locator("#sku-table tbody tr")).to_have_count(5)
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()


def test_edit_name_price_and_attributes(page, server):
    with http(server) as api:
        assert api.put("/v1/skus/oat-drink", json={"name": "Oat drink", "attributes": {"litres": 1}}).status_code == 201
    open_console(page, server, MERCH, "#/sku/oat-drink")
    page.get_by_label("Name").fill("Oatly Oat Drink 1L")
    page.get_by_label("Price (EUR)").fill("2.49")
    page.get_by_role("button", name="Add attribute").click()
    page.get_by_label("Attribute", exact=True).last.fill("brand")
    page.get_by_label("Value", exact=True).last.fill("Oatly")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#alert")).to_have_text("Saved.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Oatly Oat Drink 1L")
    with http(server) as api:
        sku = api.get("/v1/skus/oat-drink").json()
    assert (sku["name"], sku["price"], sku["attributes"]) == (
        "Oatly Oat Drink 1L",
        "2.49",
        {"litres": 1, "brand": "Oatly"},
    )
    page.get_by_label("Price (EUR)").fill("2.499")  # one decimal too many: the server's 422, shown
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#alert")).to_contain_text("422")


def test_attributes_not_edited_are_sent_back_as_received(page, server):
    attributes = {"litres": 1, "ratio": 0.5, "organic": True, "note": None, "code": "007", "empty": "", "size": "L"}
    with http(server) as api:
        assert api.put("/v1/skus/typed-attrs", json={"name": "Typed", "attributes": attributes}).status_code == 201
    open_console(page, server, MERCH, "#/sku/typed-attrs")
    page.get_by_label("Name").fill("Typed attributes")
    page.get_by_label("Value", exact=True).nth(list(attributes).index("size")).fill("XL")  # the one change
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#alert")).to_have_text("Saved.")
    with http(server) as api:
        sku = api.get("/v1/skus/typed-attrs").json()
    assert sku["name"] == "Typed attributes"
    assert sku["attributes"] == {**attributes, "size": "XL"}
    assert [type(sku["attributes"][k]).__name__ for k in ("litres", "ratio", "organic", "note")] == [
        "int",
        "float",
        "bool",
        "NoneType",
    ]


def test_delete_a_photo_then_the_sku(page, server):
    with http(server) as api:
        ids = api.post(
            "/v1/skus/rye-bread/images",
            data={"name": "Rye bread"},
            files=[("images", (f"{i}.jpg", make_jpeg(40 + i), "image/jpeg")) for i in range(3)],
        ).json()["image_ids"]
    open_console(page, server, MERCH, "#/sku/rye-bread")
    expect(page.locator("#thumbs img")).to_have_count(3)
    page.get_by_role("button", name=f"Delete photo {ids[1]}").click()
    expect(page.locator("#confirm")).to_be_visible()
    page.get_by_role("button", name="Cancel").click()  # nothing deleted
    expect(page.locator("#thumbs img")).to_have_count(3)
    page.get_by_role("button", name=f"Delete photo {ids[1]}").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#alert")).to_have_text(f"Photo {ids[1]} deleted.")
    expect(page.locator("#thumbs img")).to_have_count(2)
    with http(server) as api:
        assert api.get("/v1/skus/rye-bread").json()["image_ids"] == [ids[0], ids[2]]
    page.get_by_role("button", name="Delete SKU rye-bread").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#alert")).to_have_text("SKU rye-bread deleted.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalogue")
    with http(server) as api:
        assert api.get("/v1/skus/rye-bread").status_code == 404


def test_keyboard_alone_deletes_a_photo_with_focus_visible(page, server):
    with http(server) as api:
        ids = api.post(
            "/v1/skus/keyboard-sku/images",
            data={"name": "Keyboard"},
            files=[("images", (f"{i}.jpg", make_jpeg(70 + i), "image/jpeg")) for i in range(2)],
        ).json()["image_ids"]
    open_console(page, server, MERCH, "#/sku/keyboard-sku")
    expect(page.locator("#thumbs img")).to_have_count(2)
    page.get_by_role("link", name="← Catalogue").focus()
    target = f"Delete photo {ids[0]}"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('aria-label')") == target:
            break
    else:
        pytest.fail(f"Tab never reached {target!r}")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"  # focus is visible
    page.keyboard.press("Enter")
    expect(page.locator("#confirm")).to_be_visible()
    expect(page.locator("#confirm-cancel")).to_be_focused()  # the safe choice first
    page.keyboard.press("Escape")
    expect(page.locator("#confirm")).to_be_hidden()
    expect(page.get_by_role("button", name=target)).to_be_focused()  # back where the user was
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.locator("#confirm-ok")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#alert")).to_have_text(f"Photo {ids[0]} deleted.")
    expect(page.locator("#thumbs img")).to_have_count(1)


def enrol_named(server, sku: str, name: str, seeds: list[int]) -> list[int]:
    with http(server) as api:
        r = api.post(
            f"/v1/skus/{sku}/images",
            data={"name": name},
            files=[("images", (f"{s}.jpg", make_jpeg(s), "image/jpeg")) for s in seeds],
        )
        assert r.status_code in (200, 201), r.text
        return r.json()["image_ids"]


def hold(page, url: str) -> list:
    """Hold the browser's requests to ``url`` (the test lets each go with ``continue_()``)."""
    held: list = []

    def keep(route) -> None:  # a function of its own: Playwright cannot wrap the builtin held.append
        held.append(route)

    page.route(url, keep)
    return held


def wait_for(page, held: list, count: int = 1) -> None:
    for _ in range(200):
        if len(held) >= count:
            return
        page.wait_for_timeout(50)
    pytest.fail(f"{count} request(s) were never made")


def test_a_late_answer_for_an_earlier_page_draws_nothing(page, server):
    """SKU A's answer arrives after the user went on to SKU B: B's page alone is drawn."""
    enrol_named(server, "race-a", "Race A", [80, 81])
    enrol_named(server, "race-b", "Race B", [82])
    open_console(page, server, MERCH)
    held = hold(page, f"{server.url}/v1/skus/race-a")
    page.evaluate("location.hash = '#/sku/race-a'")
    wait_for(page, held)
    page.evaluate("location.hash = '#/sku/race-b'")
    expect(page.get_by_role("heading", level=1)).to_have_text("Race B")
    expect(page.locator("#thumbs img[data-loaded=true]")).to_have_count(1)
    with page.expect_response(lambda r: r.url.endswith("/v1/skus/race-a")):
        held[0].continue_()
    page.wait_for_timeout(500)  # time for A's render to append, were it going to
    assert page.locator("h1").all_text_contents() == ["Race B"]
    assert page.get_by_role("button", name="Delete SKU race-a").count() == 0
    assert page.locator("#thumbs img").count() == 1


def test_a_reload_after_the_user_moved_on_draws_nothing(page, server):
    """A photo of A deleted, and the user on B's page before the DELETE answers: A is not drawn over B."""
    ids = enrol_named(server, "reload-a", "Reload A", [83, 84])
    enrol_named(server, "reload-b", "Reload B", [85])
    open_console(page, server, MERCH, "#/sku/reload-a")
    expect(page.locator("#thumbs img[data-loaded=true]")).to_have_count(2)
    held = hold(page, f"{server.url}/v1/skus/reload-a/images/{ids[0]}")
    page.get_by_role("button", name=f"Delete photo {ids[0]}").click()
    page.locator("#confirm-ok").click()
    wait_for(page, held)
    page.evaluate("location.hash = '#/sku/reload-b'")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reload B")
    expect(page.locator("#thumbs img[data-loaded=true]")).to_have_count(1)
    with page.expect_response(lambda r: r.request.method == "DELETE"):
        held[0].continue_()
    page.wait_for_timeout(1000)  # time for the reload of A, were it going to
    assert page.locator("h1").all_text_contents() == ["Reload B"]
    assert page.locator("#thumbs img").count() == 1
    with http(server) as api:
        assert api.get("/v1/skus/reload-a").json()["image_ids"] == [ids[1]]  # the delete itself was done


TRACK_OBJECT_URLS = """(() => {
    const made = [], revoked = [];
    const create = URL.createObjectURL.bind(URL), revoke = URL.revokeObjectURL.bind(URL);
    URL.createObjectURL = (blob) => { const url = create(blob); made.push(url); return url; };
    URL.revokeObjectURL = (url) => { revoked.push(url); revoke(url); };
    window.objectUrls = { made, revoked };
})();"""


def test_thumbnail_urls_are_revoked_when_the_view_is_replaced(page, server):
    enrol_named(server, "revoke-me", "Revoke me", [86, 87, 88])
    page.add_init_script(TRACK_OBJECT_URLS)
    open_console(page, server, MERCH, "#/sku/revoke-me")
    expect(page.locator("#thumbs img[data-loaded=true]")).to_have_count(3)
    made = page.evaluate("window.objectUrls.made")
    assert len(made) == 3 and page.evaluate("window.objectUrls.revoked") == []
    page.get_by_role("link", name="← Catalogue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalogue")
    assert sorted(page.evaluate("window.objectUrls.revoked")) == sorted(made)


@pytest.mark.parametrize("bad", ["#/sku/%E0%A4%A", "#/sku/50%"])
def test_a_malformed_address_shows_the_catalogue_and_says_so(page, server, bad):
    open_console(page, server, MERCH)
    page.goto(f"{server.url}/healthz")  # away, then the console loaded afresh at that address (same tab: key kept)
    page.goto(f"{server.url}/{bad}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#key-status")).to_have_text("Role: merchandiser")
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalogue")
    expect(page.locator("#alert")).to_contain_text("is not a valid console page")
    page.evaluate("location.hash = '#/sku/race%zz'")  # a navigation to one, once the page is up
    expect(page.locator("#alert")).to_contain_text("#/sku/race%zz is not a valid console page")
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalogue")
    # the page fixture asserts that no JavaScript error was thrown


def test_a_checkout_key_cannot_delete(page, server):
    with http(server) as api:
        ids = api.post(
            "/v1/skus/salt/images", data={"name": "Salt"}, files=[("images", ("s.jpg", make_jpeg(60), "image/jpeg"))]
        ).json()["image_ids"]
    open_console(page, server, LANE, "#/sku/salt")
    expect(page.locator("#key-status")).to_have_text("Role: checkout")
    expect(page.locator("#thumbs img[data-loaded=true]")).to_have_count(1)  # a lane may look
    for name in (f"Delete photo {ids[0]}", "Delete SKU salt", "Save changes"):
        button = page.get_by_role("button", name=name)
        expect(button).to_be_disabled()
        expect(button).to_have_accessible_description(
            "To "
            + {"Save changes": "edit a SKU"}.get(name, "delete a SKU" if "SKU" in name else "delete a photo")
            + " you need a merchandiser key; your key is a checkout key."
        )
    expect(page.get_by_label("Choose photos")).to_be_disabled()
    # the key changes behind the page's back (the buttons were drawn for a merchandiser): the 403 is shown
    open_console(page, server, MERCH, "#/sku/salt")
    page.evaluate(f"sessionStorage.setItem('skulens.apiKey', '{LANE}')")
    page.get_by_role("button", name="Delete SKU salt").click()
    page.locator("#confirm-ok").click()
    expect(page.locator("#alert")).to_contain_text("Not allowed (403)")
    expect(page.locator("#alert")).to_contain_text("needs the 'merchandiser' role")
    with http(server) as api:
        assert api.get("/v1/skus/salt").json()["image_ids"] == ids


def test_a_bad_key_is_said_so(page, server):
    open_console(page, server, None)
    page.get_by_label("API key").fill("not-a-valid-key-at-all")
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-status")).to_have_text("Key not accepted (401)")
    page.reload()
    expect(page.locator("#alert")).to_contain_text("Not signed in (401)")
    expect(page.get_by_role("button", name="Create SKU")).to_be_disabled()


def counter_parts():
    """The counter modules and the scenes of test_checkout/test_lanes; the test is skipped without OpenCV."""
    pytest.importorskip("cv2", reason="the counter extra (opencv-python-headless) is not installed")
    from counter.boxes import match
    from counter.scenes import make_scene
    from counter.segment import BackgroundSegmenter
    from tests.e2e.test_checkout import PRODUCTS
    from tests.e2e.test_lanes import decoded, jpeg

    return match, make_scene, BackgroundSegmenter, PRODUCTS, decoded, jpeg


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def enrol_scene_crops(server, photo: np.ndarray, boxes, truth, prices: dict[str, str]) -> None:
    with http(server) as api:
        for sku, price in prices.items():
            assert api.put(
                f"/v1/skus/{sku}", json={"name": sku.replace("-", " ").title(), "price": price}
            ).status_code in (200, 201)
        for index, box in enumerate(boxes):
            if truth[index] in prices:
                crop = photo[box.y0 : box.y1, box.x0 : box.x1]
                r = api.post(f"/v1/skus/{truth[index]}/images", files=[("images", ("c.png", png(crop), "image/png"))])
                assert r.status_code in (200, 201), r.text


def test_a_counter_photo_on_the_lane_page_gives_the_total(page, server):
    match, make_scene, BackgroundSegmenter, PRODUCTS, _, _ = counter_parts()
    scene = make_scene(PRODUCTS, 3, n_items=5, touching=False, surface_kind="laminate")
    boxes = BackgroundSegmenter().segment(scene.photo)
    pairs = dict(match(boxes, [item.box for item in scene.items]))
    truth = [scene.items[pairs[i]].sku for i in range(len(boxes))]
    assert sorted(truth) == ["blue-carton", "green-pear", "red-apple", "red-apple", "yellow-carton"]
    enrol_scene_crops(server, scene.photo, boxes, truth, {"red-apple": "0.35", "blue-carton": "1.20"})
    with http(server) as api:  # enrolled, without a price
        api.put("/v1/skus/yellow-carton", json={"name": "Yellow carton"})
        crop = next(scene.photo[b.y0 : b.y1, b.x0 : b.x1] for b, t in zip(boxes, truth) if t == "yellow-carton")
        api.post("/v1/skus/yellow-carton/images", files=[("images", ("y.png", png(crop), "image/png"))])

    open_console(page, server, LANE, "#/lane")
    page.get_by_label("Lane", exact=True).fill("lane-3")
    page.get_by_label("Upload a counter photo").set_input_files(
        {"name": "counter.png", "mimeType": "image/png", "buffer": png(scene.photo)}
    )
    expect(page.locator("#total")).to_have_text("1.90 EUR")
    expect(page.locator("#items li")).to_have_count(5)
    expect(page.locator("#items li.attention")).to_have_count(2)  # green-pear unknown, yellow-carton unpriced
    attention = page.locator("#needs-attention")
    expect(attention.locator("li")).to_have_count(2)
    expect(attention).to_contain_text(f"Item {truth.index('green-pear') + 1}:")
    expect(attention).to_contain_text(f"Item {truth.index('yellow-carton') + 1}:")
    lines = page.locator("#basket-lines tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.filter(has_text="Red Apple")).to_contain_text("2")
    expect(lines.filter(has_text="Red Apple")).to_contain_text("0.70")
    size = page.eval_on_selector("#photo", "c => [c.width, c.height]")
    assert size == [960, 720]  # the photo drawn at its own size, boxes in its pixels
    # a checkout key may not store the lane's background
    expect(page.get_by_role("button", name="Use this photo as the lane's empty-counter background")).to_be_disabled()


def test_a_lane_background_set_from_the_page_is_used(page, server):
    match, make_scene, BackgroundSegmenter, PRODUCTS, decoded, jpeg = counter_parts()
    scene = make_scene(PRODUCTS, 21, n_items=4, touching=False, surface_kind="wood")
    photo_jpeg, background_jpeg = jpeg(scene.photo), jpeg(scene.background)
    photo = decoded(photo_jpeg)
    boxes = BackgroundSegmenter().segment(photo, decoded(background_jpeg))
    pairs = dict(match(boxes, [item.box for item in scene.items]))
    truth = [scene.items[pairs[i]].sku for i in range(len(boxes))]
    enrol_scene_crops(server, photo, boxes, truth, dict.fromkeys(set(truth), "1.00"))

    open_console(page, server, MERCH, "#/lane")
    lane = page.get_by_label("Lane", exact=True)
    lane.fill("lane-7")
    lane.press("Tab")
    expect(page.locator("#background-status")).to_contain_text("Lane lane-7 has no background")
    page.get_by_label("Upload a counter photo").set_input_files(
        {"name": "empty.jpg", "mimeType": "image/jpeg", "buffer": background_jpeg}
    )
    expect(page.locator("#needs-attention")).to_contain_text("no item")  # an empty counter
    page.get_by_role("button", name="Use this photo as the lane's empty-counter background").click()
    page.get_by_role("button", name="Use as background").click()
    expect(page.locator("#alert")).to_have_text("Lane lane-7's background stored (960×720).")
    expect(page.locator("#background-status")).to_contain_text("has an empty-counter background (960×720)")
    page.get_by_label("Upload a counter photo").set_input_files(
        {"name": "counter.jpg", "mimeType": "image/jpeg", "buffer": photo_jpeg}
    )
    expect(page.locator("#total")).to_have_text("4.00 EUR")
    expect(page.locator("#basket")).to_contain_text("Segmentation: lane_background")
    expect(page.locator("#needs-attention")).to_have_count(0)


def choose_lane(page, lane: str) -> None:
    field = page.get_by_label("Lane", exact=True)
    field.fill(lane)
    field.press("Tab")  # the change event: the page asks for the lane


def test_a_merchandiser_sets_the_lanes_item_area(page, server):
    open_console(page, server, MERCH, "#/lane")
    choose_lane(page, "lane-area-1")
    status = page.locator("#item-area-status")
    expect(status).to_contain_text("Item area: default")  # nothing stored for the lane yet (a 404)
    expect(status).to_contain_text("lane lane-area-1")
    expect(page.locator("#background-status")).to_contain_text("Lane lane-area-1 has no background")
    area = page.get_by_label("Item area (share of the photo)")
    expect(area).to_have_attribute("min", "0")
    expect(area).to_have_attribute("max", "0.5")
    area.fill("0.05")
    page.get_by_role("button", name="Save item area").click()
    expect(page.locator("#alert")).to_have_text("Lane lane-area-1's item area set to 0.05.")
    expect(status).to_contain_text("Item area: 0.05 (set for lane lane-area-1)")
    with http(server, LANE) as api:
        assert api.get("/v1/lanes/lane-area-1").json()["item_area"] == 0.05

    for bad, quoted in (("0.001", "item_area 0.001 is out of range"), ("0.9", "item_area 0.9 is out of range")):
        area.fill(bad)
        area.press("Enter")  # the form's submit, as the button's
        expect(page.locator("#alert")).to_contain_text(quoted)  # the server's message, as ApiFailure.explain says it
        expect(page.locator("#alert")).to_contain_text("(422 invalid_lane_setting)")
        expect(page.locator("#alert")).to_contain_text("from 0.004 to 0.5")
        expect(page.locator("#item-area-problem")).to_contain_text(quoted)  # beside the input too
        expect(area).to_have_attribute("aria-invalid", "true")
        expect(status).to_contain_text("Item area: 0.05")  # what is stored, unchanged
        expect(area).to_have_value(bad)  # kept, to be corrected
        with http(server, LANE) as api:
            assert api.get("/v1/lanes/lane-area-1").json()["item_area"] == 0.05
    area.fill("")
    page.get_by_role("button", name="Save item area").click()  # nothing to send: said so, nothing sent
    expect(page.locator("#alert")).to_contain_text("Enter the item area as a number")

    page.get_by_role("button", name="Use the default").click()
    expect(page.locator("#alert")).to_have_text("Lane lane-area-1 is back on the default item area (0.023).")
    expect(page.locator("#item-area-problem")).to_be_hidden()
    expect(area).not_to_have_attribute("aria-invalid", "true")
    expect(status).to_contain_text("Item area: default (0.023)")
    expect(area).to_have_value("")
    with http(server, LANE) as api:
        got = api.get("/v1/lanes/lane-area-1").json()
    assert got["item_area"] is None and got["default_item_area"] == 0.023
    page.reload()  # a lane with settings but no value of its own: the server says the default
    choose_lane(page, "lane-area-1")
    expect(status).to_contain_text("Item area: default (0.023)")


def test_an_item_area_typed_before_the_lanes_answer_is_kept(page, server):
    with http(server) as api:
        assert api.put("/v1/lanes/lane-area-3/settings", json={"item_area": 0.02}).status_code in (200, 201)
    open_console(page, server, MERCH, "#/lane")
    expect(page.locator("#item-area-status")).to_contain_text("Item area")  # the first lane's answer is in
    held = hold(page, f"{server.url}/v1/lanes/lane-area-3")
    choose_lane(page, "lane-area-3")
    wait_for(page, held)
    area = page.get_by_label("Item area (share of the photo)")
    area.fill("0.04")
    held[0].continue_()
    expect(page.locator("#item-area-status")).to_contain_text("Item area: 0.02 (set for lane lane-area-3)")
    expect(area).to_have_value("0.04")  # not replaced by what the lane had
    page.unroute(f"{server.url}/v1/lanes/lane-area-3")
    page.get_by_role("button", name="Save item area").click()
    expect(page.locator("#item-area-status")).to_contain_text("Item area: 0.04 (set for lane lane-area-3)")
    with http(server, LANE) as api:
        assert api.get("/v1/lanes/lane-area-3").json()["item_area"] == 0.04


def test_a_checkout_key_sees_the_item_area_but_cannot_set_it(page, server):
    with http(server) as api:
        assert api.put("/v1/lanes/lane-area-2/settings", json={"item_area": 0.031}).status_code in (200, 201)
    open_console(page, server, LANE, "#/lane")
    expect(page.locator("#key-status")).to_have_text("Role: checkout")
    choose_lane(page, "lane-area-2")
    expect(page.locator("#item-area-status")).to_contain_text("Item area: 0.031 (set for lane lane-area-2)")
    expect(page.get_by_label("Item area (share of the photo)")).to_have_value("0.031")
    why = "To set a lane's item area you need a merchandiser key; your key is a checkout key."
    for control in (
        page.get_by_role("button", name="Save item area"),
        page.get_by_role("button", name="Use the default"),
        page.get_by_label("Item area (share of the photo)"),
    ):
        expect(control).to_be_disabled()
        expect(control).to_have_accessible_description(why)
    expect(page.locator("#lane-settings .why:visible")).to_have_text(why)  # said once, on the page
    with http(server, LANE) as api:
        assert api.get("/v1/lanes/lane-area-2").json()["item_area"] == 0.031


def test_the_camera_takes_a_counter_photo(page, server):
    open_console(page, server, LANE, "#/lane")
    page.get_by_role("button", name="Start camera").click()  # Chromium's fake camera
    expect(page.get_by_label("Camera preview")).to_be_visible()
    page.get_by_role("button", name="Take photo").click()
    expect(page.locator("#total")).to_contain_text("EUR")
    page.get_by_role("button", name="Stop camera").click()
    expect(page.get_by_role("button", name="Start camera")).to_be_visible()


def shoot(page, out_dir: Path, name: str, label: str) -> None:
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute('aria-label') && !c.textContent.trim())
        .map((c) => c.outerHTML)""")
    assert not unlabelled, f"controls without a label on the {name} page: {unlabelled}"
    page.evaluate("document.activeElement && document.activeElement.blur()")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the {name} page at {label} width is {overflow} px wider than the screen"
    page.screenshot(path=str(out_dir / f"{name}-{label}.png"), full_page=True)


def test_screenshots_at_desktop_and_phone_width(browser, server, tmp_path):
    """Every page at 1280x800 and 390 px wide, none wider than the screen; the PNGs are written to
    ``$SKULENS_SCREENSHOTS`` when it is set (docs/screenshots is made so), else to a temporary folder."""
    _, make_scene, _, PRODUCTS, _, _ = counter_parts()
    with http(server) as api:  # enrolled by the tests above; here too when this test runs alone
        if api.get("/v1/skus/arla-milk-1l").status_code == 404:
            api.put("/v1/skus/arla-milk-1l", json={"name": "Arla Milk 1L", "price": "1.35"})
            api.post(
                "/v1/skus/arla-milk-1l/images",
                files=[("images", (f"{i}.jpg", make_jpeg(11 + i), "image/jpeg")) for i in range(4)],
            )
    scene = make_scene(PRODUCTS, 3, n_items=5, touching=False, surface_kind="laminate")
    out_dir = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        refused = off_network(page, server.url)
        open_console(page, server, MERCH, "#/skus")
        page.get_by_role("button", name="Use key").blur()
        page.evaluate("document.getElementById('alert').hidden = true")
        expect(page.locator("#sku-table")).to_be_visible()
        shoot(page, out_dir, "catalogue", label)
        page.goto(f"{server.url}/#/sku/arla-milk-1l")
        expect(page.locator("#thumbs img[data-loaded=true]")).to_have_count(4)
        shoot(page, out_dir, "sku", label)
        page.goto(f"{server.url}/#/lane")
        page.get_by_label("Lane", exact=True).fill("lane-3")
        page.get_by_label("Upload a counter photo").set_input_files(
            {"name": "counter.png", "mimeType": "image/png", "buffer": png(scene.photo)}
        )
        expect(page.locator("#total")).to_contain_text("EUR")  # prices as the tests above left them
        shoot(page, out_dir, "lane", label)
        context.close()
        assert not refused
    assert {p.name for p in out_dir.glob("*.png")} >= {
        f"{n}-{s}.png" for n in ("catalogue", "sku", "lane") for s in ("desktop", "phone")
    }


def test_thumbnail_bytes_are_cached(server):
    with http(server) as api:  # its own SKU: the test passes when run alone
        ids = api.post(
            "/v1/skus/cached-thumbs/images",
            data={"name": "Cached thumbnails"},
            files=[("images", ("c.jpg", make_jpeg(90, size=(640, 480)), "image/jpeg"))],
        ).json()["image_ids"]
    with http(server, LANE) as api:
        url = f"/v1/skus/cached-thumbs/images/{ids[0]}"
        first = api.get(url, params={"size": 256})
        assert first.status_code == 200 and Image.open(io.BytesIO(first.content)).format == "JPEG"
        assert api.get(url, params={"size": 256}, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
