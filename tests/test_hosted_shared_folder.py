"""One payment per input, whatever runs it: two REAL ComfyUI servers (the host under test) share
one user folder (ComfyUI's --user-directory), and so the pack's journal, cache and ledger. Both
are given the same FalFill prompt at the same instant; the fal emulator counts the submits and
the billed jobs: exactly one of each, and both servers output the same image."""
import threading

import numpy as np
import pytest

from comfy_host import ComfyServer, make_base_dir
from emulators import FalEmulator, WaveSpeedEmulator
from test_hosted_nodes_graphs import FAL_KEY, WS_KEY, assert_ok, emulator_env, graph, outputs

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def emus():
    with FalEmulator(FAL_KEY, queue_seconds=0.3, run_seconds=1.5) as fal, \
            WaveSpeedEmulator(WS_KEY, queue_seconds=0.0, run_seconds=0.1) as ws:
        yield fal, ws


@pytest.fixture(scope="module")
def shared(emus, tmp_path_factory):
    user = tmp_path_factory.mktemp("shared_user")
    found, errors = {}, []

    def start(name):
        try:
            found[name] = ComfyServer(make_base_dir(tmp_path_factory.mktemp(f"shared_{name}")),
                                      env=emulator_env(*emus),
                                      args=["--user-directory", str(user)]).start()
        except RuntimeError as e:
            errors.append(e)

    threads = [threading.Thread(target=start, args=(n,)) for n in "ab"]
    [t.start() for t in threads]
    [t.join() for t in threads]
    try:
        if errors:
            raise errors[0]
        yield [found["a"], found["b"]], user
    finally:
        for s in found.values():
            s.stop()


def run_both(servers, g) -> list[dict]:
    """Queue `g` on every server at the same instant; their histories."""
    start, out = threading.Barrier(len(servers)), {}

    def one(i, s):
        start.wait()
        out[i] = s.run(g, timeout=120)

    threads = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(servers)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return [out[i] for i in range(len(servers))]


def test_the_same_prompt_on_two_servers_at_once_is_paid_once(shared, emus):
    (a, b), user = shared
    fal = emus[0]
    submits, billed = fal.count("submit"), len(fal.billed)
    g, name = graph(a, "FalFill", endpoint="fal-ai/flux-lora/inpainting", prompt="one payment")
    histories = run_both([a, b], g)
    for server, h in zip((a, b), histories):
        assert_ok(server, h)
    assert fal.count("submit") - submits == 1 and len(fal.billed) - billed == 1
    (img_a, rep_a), (img_b, rep_b) = outputs(a, name), outputs(b, name)
    assert np.array_equal(img_a, img_b)
    assert sorted(r["results"][0]["cached"] for r in (rep_a, rep_b)) == [False, True]
    assert (user / "fluxfill" / "hosted.sqlite3").is_file()


def test_different_prompts_on_two_servers_run_side_by_side(shared, emus):
    """The lock is per input: two different prompts are not serialised behind each other."""
    (a, b), _ = shared
    fal = emus[0]
    submits = fal.count("submit")
    ga, na = graph(a, "FalFill", endpoint="fal-ai/flux-lora/inpainting", prompt="left")
    gb, nb = graph(b, "FalFill", endpoint="fal-ai/flux-lora/inpainting", prompt="right")
    start, out = threading.Barrier(2), {}

    def one(s, g):
        start.wait()
        out[s.url] = s.run(g, timeout=120)

    threads = [threading.Thread(target=one, args=sg) for sg in ((a, ga), (b, gb))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert_ok(a, out[a.url])
    assert_ok(b, out[b.url])
    assert fal.count("submit") - submits == 2
    assert not np.array_equal(outputs(a, na)[0], outputs(b, nb)[0])
