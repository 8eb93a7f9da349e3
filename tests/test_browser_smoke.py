"""The real frontend of the host under test, in headless Chromium: it loads cleanly, its node
search finds stock nodes, and a UI-format workflow queued from the page produces its image.
On the host's pinned frontend (the session's comfy_server) and on every newer build that
scripts/hosts.sh lists (a server of the same host with --front-end-root, one per build)."""
import time

import numpy as np
import pytest
from PIL import Image

from browser import FRONTENDS, PINNED, frontend_server, opened_page, shot_name
from comfy_host import make_base_dir

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


@pytest.fixture(scope="module", params=FRONTENDS)
def frontend(request):
    return request.param


@pytest.fixture(scope="module")
def server(frontend, request, tmp_path_factory):
    """The session's server on the pinned frontend; a server of its own for another build."""
    if frontend == PINNED:
        yield request.getfixturevalue("comfy_server")
        return
    srv = frontend_server(make_base_dir(tmp_path_factory.mktemp("browser_smoke")), frontend)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server, frontend):
    with opened_page(server.url, "fluxfill-browser-") as p:
        if frontend != PINNED:
            assert p.frontend_version == frontend
        p.frontend = frontend
        yield p


def assert_no_console_errors(page):
    errors, ignored = page.console_errors()
    for msg, why in ignored:
        print(f"ignored console error ({why}): {msg[:200]}")
    assert not errors, "console errors:\n" + "\n".join(errors)


def test_page_loads_without_console_errors(page):
    print("screenshot:", page.screenshot(shot_name("01-loaded", page.frontend)))
    assert page.frontend_version                       # the real frontend package, not a stub page
    assert "KSampler" in page.node_types()
    assert_no_console_errors(page)


@pytest.mark.parametrize("query,name", [("KSampler", "KSampler"), ("Load Image", "Load Image")])
def test_stock_node_found_by_the_search_dialog(page, query, name):
    names = page.search_nodes(query)
    print("screenshot:", page.screenshot(shot_name(f"02-search-{query}", page.frontend)))
    page.close_node_search()
    assert page.search_opened_by == "double-click"
    assert name in names[:5], f"search for {query!r} listed {names[:10]}"
    assert_no_console_errors(page)


def test_ui_workflow_queued_from_the_page_saves_its_image(page, server):
    before = set(server.get("/history").json())
    page.load_workflow(UI_WORKFLOW)
    assert [n["type"] for n in page.graph_nodes()] == ["EmptyImage", "SaveImage"]
    print("screenshot:", page.screenshot(shot_name("03-workflow-loaded", page.frontend)))
    page.queue(via="button")

    deadline, entry = time.monotonic() + 60, None
    while entry is None and time.monotonic() < deadline:
        new = {k: v for k, v in server.get("/history").json().items() if k not in before}
        entry = next((v for v in new.values() if v.get("status", {}).get("completed")), None)
        time.sleep(0.2)
    assert entry is not None, f"nothing new finished in /history (screenshot {page.screenshot('03-timeout')})"
    images = entry["outputs"]["2"]["images"]
    assert len(images) == 1 and images[0]["filename"].startswith(PREFIX)
    [path] = server.output_files(entry)
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape == (48, 64, 3) and np.all(img == [255, 0, 0])

    # the page got the result over its websocket: SaveImage shows that very file
    deadline, shown = time.monotonic() + 15, None
    while time.monotonic() < deadline:
        shown = page.node_outputs(2)
        if shown and shown.get("images"):
            break
        time.sleep(0.2)
    print("screenshot:", page.screenshot(shot_name("04-executed", page.frontend)))
    assert shown and [i["filename"] for i in shown["images"]] == [images[0]["filename"]]
    assert_no_console_errors(page)
