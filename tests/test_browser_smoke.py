"""The real frontend of the host under test, in headless Chromium: it loads cleanly, its node
search finds stock nodes, and a UI-format workflow queued from the page produces its image."""
import time

import numpy as np
import pytest
from PIL import Image

from browser import opened_page

# EmptyImage (64x48, red) -> SaveImage, as the frontend saves it (LiteGraph "UI format").
PREFIX = "browser_smoke"
UI_WORKFLOW = {
    "last_node_id": 2, "last_link_id": 1, "version": 0.4, "groups": [], "config": {}, "extra": {},
    "nodes": [
        {"id": 1, "type": "EmptyImage", "pos": [100, 100], "size": [315, 130], "flags": {}, "order": 0,
         "mode": 0, "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1], "slot_index": 0}],
         "properties": {"Node name for S&R": "EmptyImage"}, "widgets_values": [64, 48, 1, 0xFF0000]},
        {"id": 2, "type": "SaveImage", "pos": [500, 100], "size": [315, 270], "flags": {}, "order": 1,
         "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 1}], "outputs": [],
         "properties": {"Node name for S&R": "SaveImage"}, "widgets_values": [PREFIX]},
    ],
    "links": [[1, 1, 0, 2, 0, "IMAGE"]],
}


@pytest.fixture(scope="module")
def page(comfy_server):
    with opened_page(comfy_server.url, "fluxfill-browser-") as p:
        yield p


def assert_no_console_errors(page):
    errors, ignored = page.console_errors()
    for msg, why in ignored:
        print(f"ignored console error ({why}): {msg[:200]}")
    assert not errors, "console errors:\n" + "\n".join(errors)


def test_page_loads_without_console_errors(page):
    print("screenshot:", page.screenshot("01-loaded"))
    assert page.frontend_version                       # the real frontend package, not a stub page
    assert "KSampler" in page.node_types()
    assert_no_console_errors(page)


@pytest.mark.parametrize("query,name", [("KSampler", "KSampler"), ("Load Image", "Load Image")])
def test_stock_node_found_by_the_search_dialog(page, query, name):
    names = page.search_nodes(query)
    print("screenshot:", page.screenshot(f"02-search-{query}"))
    page.close_node_search()
    assert page.search_opened_by == "double-click"
    assert name in names[:5], f"search for {query!r} listed {names[:10]}"
    assert_no_console_errors(page)


def test_ui_workflow_queued_from_the_page_saves_its_image(page, comfy_server):
    before = set(comfy_server.get("/history").json())
    page.load_workflow(UI_WORKFLOW)
    assert [n["type"] for n in page.graph_nodes()] == ["EmptyImage", "SaveImage"]
    print("screenshot:", page.screenshot("03-workflow-loaded"))
    page.queue(via="button")

    deadline, entry = time.monotonic() + 60, None
    while entry is None and time.monotonic() < deadline:
        new = {k: v for k, v in comfy_server.get("/history").json().items() if k not in before}
        entry = next((v for v in new.values() if v.get("status", {}).get("completed")), None)
        time.sleep(0.2)
    assert entry is not None, f"nothing new finished in /history (screenshot {page.screenshot('03-timeout')})"
    images = entry["outputs"]["2"]["images"]
    assert len(images) == 1 and images[0]["filename"].startswith(PREFIX)
    [path] = comfy_server.output_files(entry)
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape == (48, 64, 3) and np.all(img == [255, 0, 0])

    # the page got the result over its websocket: SaveImage shows that very file
    deadline, shown = time.monotonic() + 15, None
    while time.monotonic() < deadline:
        shown = page.node_outputs(2)
        if shown and shown.get("images"):
            break
        time.sleep(0.2)
    print("screenshot:", page.screenshot("04-executed"))
    assert shown and [i["filename"] for i in shown["images"]] == [images[0]["filename"]]
    assert_no_console_errors(page)
