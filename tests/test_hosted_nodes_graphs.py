"""Helpers (no tests) for the hosted-node server tests: API-format graphs and reading outputs.

Graph: FluxFillTestPattern (image + binary mask) → FalFill / WaveSpeedFill → raw saver (npy)
+ text saver (report). Every widget comes from the server's own /object_info defaults, so
the tests exercise exactly what the UI would send."""
from __future__ import annotations

import json
import struct
import threading
import uuid

import numpy as np

FAL_KEY = "fal.test-id:SECRET-fal-9d81c2b7a4e6"  # a fake key, recognisable when it leaks
WS_KEY = "ws-SECRET-5b2e8c1f90ad4e7b"


def emulator_env(fal, ws, with_keys: bool = True) -> dict:
    env = {"FAL_QUEUE_URL": fal.queue_url, "FAL_REST_URL": fal.rest_url, "FAL_API_URL": fal.api_url,
           "WAVESPEED_API_URL": ws.base_url, "FAL_KEY": "", "WAVESPEED_API_KEY": ""}
    if with_keys:
        env.update(FAL_KEY=FAL_KEY, WAVESPEED_API_KEY=WS_KEY)
    return env


_DEFAULTS: dict = {}


def widget_defaults(server, node: str) -> dict:
    """{input: default} of every required widget, from the server's /object_info."""
    if node not in _DEFAULTS:
        info = server.object_info(node)[node]["input"]["required"]
        out = {}
        for name, spec in info.items():
            kind, cfg = spec[0], (spec[1] if len(spec) > 1 else {})
            if isinstance(kind, list):
                out[name] = cfg.get("default", kind[0])
            elif kind == "COMBO":  # newer object_info shape
                out[name] = cfg.get("default", cfg.get("options", [None])[0])
            elif "default" in cfg:
                out[name] = cfg["default"]
        _DEFAULTS[node] = out
    return dict(_DEFAULTS[node])


def graph(server, node: str = "FalFill", *, w: int = 64, h: int = 64, batch: int = 1,
          pattern_seed: int = 0, prompt: str | None = None, name: str | None = None,
          extra: dict | None = None, **inputs) -> tuple[dict, str]:
    """(API prompt, output name). `inputs` override the node's widgets; `extra` adds nodes."""
    name = name or f"t_{uuid.uuid4().hex[:10]}"
    node_inputs = widget_defaults(server, node)
    node_inputs.update(image=["1", 0], mask=["1", 1],
                       prompt=prompt if prompt is not None else f"a red door {name}")
    node_inputs.update(inputs)
    g = {
        "1": {"class_type": "FluxFillTestPattern",
              "inputs": {"width": w, "height": h, "batch": batch, "seed": pattern_seed,
                         "mask_batch": 1, "soft": False, "pick": -1}},
        "2": {"class_type": node, "inputs": node_inputs},
        "3": {"class_type": "FluxFillTestSaveTensor", "inputs": {"name": name, "images": ["2", 0]}},
        "4": {"class_type": "FluxFillTestSaveText", "inputs": {"text": ["2", 1], "name": name + "_report"}},
    }
    g.update(extra or {})
    return g, name


def pattern_node(w=64, h=64, batch=1, seed=7) -> dict:
    return {"class_type": "FluxFillTestPattern",
            "inputs": {"width": w, "height": h, "batch": batch, "seed": seed, "mask_batch": 1,
                       "soft": False, "pick": -1}}


def lora_node(entries) -> dict:
    return {"class_type": "FluxFillTestRawLoraStack", "inputs": {"entries": json.dumps(entries)}}


def outputs(server, name: str) -> tuple[np.ndarray, dict]:
    out = server.base / "output"
    return np.load(out / f"{name}.npy"), json.loads((out / f"{name}_report.txt").read_text())


def error_text(history: dict) -> str:
    from comfy_host import execution_error
    err = execution_error(history)
    assert err is not None, f"expected an execution error, got {history.get('status')}"
    return f"{err.get('exception_type')}: {err.get('exception_message')}"


def assert_ok(server, history: dict):
    from comfy_host import execution_error
    err = execution_error(history)
    assert err is None, f"{err.get('exception_message')}\n{''.join(err.get('traceback', []))}"


def payloads(emu, since: int) -> list[dict]:
    return [r["payload"] for r in emu.requests[since:]]


def listen(server):
    """(texts, events, stop): every progress text (node id, text) and every JSON event the server
    sends this client on its websocket, until stop() is called."""
    import websocket
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws?clientId={server.client_id}", timeout=30)
    texts, events, done = [], [], threading.Event()

    def receive():
        while not done.is_set():
            try:
                msg = ws.recv()
            except Exception:  # noqa: BLE001 - socket closed at the end
                return
            if isinstance(msg, bytes) and struct.unpack(">I", msg[:4])[0] == 3:
                n = struct.unpack(">I", msg[4:8])[0]
                texts.append((msg[8:8 + n].decode(), msg[8 + n:].decode()))
            elif isinstance(msg, str) and msg:
                events.append(json.loads(msg))

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()

    def stop():
        done.set()
        ws.close()
        thread.join(5)
    return texts, events, stop
