"""Builds the example workflows in the real ComfyUI frontend and saves both formats.

    FLUXFILL_COMFYUI=$PWD/.hosts/comfyui-0.30.0 .hosts/comfyui-0.30.0.venv/bin/python workflows/build_workflows.py

Each graph below is made on a live page (LiteGraph.createNode, widget values by name,
connect by slot name), then saved as app.graph.serialize() -> workflows/<name>.json (UI
format, listed in the templates menu) and app.graphToPrompt().output ->
workflows/api/<name>.api.json (API format, for POST /prompt). The API twins sit in a
subfolder because ComfyUI lists every *.json directly in workflows/ as a template.
The model files are named as users have them; the builder's server lists empty stand-ins.
"""
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from browser import ComfyPage  # noqa: E402
from comfy_host import ComfyServer, make_base_dir  # noqa: E402

# The model files of ComfyUI's official FLUX.1 Fill template (flux_fill_inpaint_example), with its
# download links. Each loader node gets them as properties.models: both frontends read that list
# (entries whose name is one of the node's widget values) and offer the files a user lacks.
MODEL_DOWNLOADS = {
    "flux1-fill-dev.safetensors": ("diffusion_models", "https://huggingface.co/Comfy-Org/flux1-dev/resolve/main/"
                                   "split_files/diffusion_models/flux1-fill-dev.safetensors"),
    "clip_l.safetensors": ("text_encoders",
                           "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors"),
    "t5xxl_fp16.safetensors": ("text_encoders", "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/"
                               "main/t5xxl_fp16.safetensors"),
    "ae.safetensors": ("vae", "https://huggingface.co/Comfy-Org/Lumina_Image_2.0_Repackaged/resolve/main/"
                       "split_files/vae/ae.safetensors"),
}
MODEL_LOADERS = ("UNETLoader", "DualCLIPLoader", "VAELoader")
# folder -> file names: the builder's server lists empty stand-ins of these
MODEL_FILES = {folder: [n for n, (f, _) in MODEL_DOWNLOADS.items() if f == folder]
               for folder in dict.fromkeys(f for f, _ in MODEL_DOWNLOADS.values())}
PHOTO, LARGE, SMALL = "fluxfill_photo.png", "fluxfill_large_photo.png", "fluxfill_outpaint.png"
BEDS = "fluxfill_flower_beds.png"
DOOR = "a red wooden front door with a brass handle, soft daylight"
SEED = 1234


def N(key, type_, pos, title=None, size=None, **widgets):
    return {"key": key, "type": type_, "pos": pos, "title": title, "size": size, "widgets": widgets}


def loaders(x=40, y=40):
    return [N("unet", "UNETLoader", [x, y], unet_name="flux1-fill-dev.safetensors", weight_dtype="default"),
            N("clip", "DualCLIPLoader", [x, y + 130], clip_name1="clip_l.safetensors",
              clip_name2="t5xxl_fp16.safetensors", type="flux"),
            N("vae", "VAELoader", [x, y + 300], vae_name="ae.safetensors")]


def local_fill_node(key, pos, prompt, title=None):
    return N(key, "FluxFillLocal", pos, title, prompt=prompt, seed=SEED, control_after_generate="fixed",
             steps=28, guidance=30.0)


def model_links(fill_key):
    return [("unet", "MODEL", fill_key, "model"), ("clip", "CLIP", fill_key, "clip"), ("vae", "VAE", fill_key, "vae")]


def fill_chain(fill_key, prep_key="prep", paste_key="paste"):
    return [(prep_key, "image", fill_key, "image"), (prep_key, "mask", fill_key, "mask"),
            (fill_key, "images", paste_key, "fill"), (prep_key, "stitch", paste_key, "stitch")]


def load(key, image, pos):
    return N(key, "LoadImage", pos, image=image)


def prep(pos, **widgets):
    return N("prep", "MaskPrep", pos, **{"grow": 8, "feather": 16, **widgets})


def note(pos, text):
    return N("note", "Note", pos, size=[420, 260], text=text)


def single(name, fill_node, extra_nodes=(), extra_links=(), image=PHOTO, prep_widgets=None, note_text=""):
    nodes = [load("load", image, [40, 480]), prep([400, 480], **(prep_widgets or {})), fill_node,
             N("paste", "PasteBack", [1240, 480]),
             N("save", "SaveImage", [1560, 480], filename_prefix=f"FluxFill/{name}"),
             note([1240, 80], note_text), *extra_nodes]
    links = [("load", "IMAGE", "prep", "image"), ("load", "MASK", "prep", "mask"), *fill_chain(fill_node["key"]),
             ("paste", "image", "save", "images"), *extra_links]
    return {"nodes": nodes, "links": links}


PAINT = "Paint the area to fill: right-click Load Image > Open in MaskEditor (the example image already has a mask)."
MODELS = ("Models: models/diffusion_models/flux1-fill-dev.safetensors, models/text_encoders/clip_l.safetensors "
          "+ t5xxl_fp16.safetensors, models/vae/ae.safetensors.")


def local_fill():
    g = single("local_fill", local_fill_node("fill", [800, 480], DOOR), extra_nodes=loaders(400, 40),
               extra_links=model_links("fill"),
               note_text="Local FLUX.1 Fill.\n\n" + MODELS + "\n\n" + PAINT + "\n\nMaskPrep crops around the mask, "
               "FLUX Fill (local) fills the crop, Paste Back puts it into the full image: pixels outside the "
               "mask stay untouched. More variations: num_images. LoRAs: connect a LoRA Stack (FluxFill).")
    return g


def fal_fill():
    fill = N("fill", "FalFill", [800, 480], prompt=DOOR, seed=SEED, control_after_generate="fixed")
    return single("fal_fill", fill, note_text="FLUX Fill on fal.ai (paid per image).\n\nAPI key: set FAL_KEY before "
                  "starting ComfyUI, or save it in the FluxFill settings. " + PAINT + "\n\nendpoint picks the "
                  "model (flux-lora-fill = FLUX.1 Fill [dev]); widgets an endpoint does not take are ignored.")


def wavespeed_fill():
    fill = N("fill", "WaveSpeedFill", [800, 480], prompt=DOOR, seed=SEED, control_after_generate="fixed")
    return single("wavespeed_fill", fill, prep_widgets={"max_side": 1536},
                  note_text="FLUX Fill [dev] on WaveSpeedAI (paid per image).\n\nAPI key: set WAVESPEED_API_KEY "
                  "before starting ComfyUI, or save it in the FluxFill settings. " + PAINT + "\n\nWaveSpeed takes "
                  "256-1536 pixels per side: MaskPrep's max_side is 1536.")


def large_photo_edit():
    fill = local_fill_node("fill", [800, 480], "a round window with a flower box, soft daylight")
    g = single("large_photo_edit", fill, image=LARGE,
               extra_nodes=[*loaders(400, 40),
                            N("crop", "PreviewImage", [800, 980], "What the model sees", size=[400, 360])],
               extra_links=[*model_links("fill"), ("prep", "image", "crop", "images")],
               prep_widgets={"context_factor": 1.5, "context_px": 64},
               note_text="A small edit in a large photo (2048x1536).\n\nMaskPrep crops the mask plus context "
               "(context_factor, context_px) and scales the crop to target_mp (1 MP): the model works at its "
               "own resolution on a small part. Paste Back scales the fill down and blends it into the "
               "full-size photo; every pixel outside the blend area is the original's.\n\n" + MODELS)
    return g


def outpaint():
    g = single("outpaint", local_fill_node("fill", [800, 480], "a sunny garden with trees and flowers, wide landscape"),
               image=SMALL, extra_nodes=loaders(400, 40), extra_links=model_links("fill"),
               prep_widgets={"grow": 16, "feather": 24, "crop": False, "pad_left": 192, "pad_right": 192,
                             "pad_bottom": 128},
               note_text="Outpainting: MaskPrep's pad_left / pad_top / pad_right / pad_bottom add new canvas "
               "that is filled (no mask needed: the image has none). grow lets the fill overlap the old edge a "
               "little, feather blends the seam.\n\n" + MODELS)
    g["links"] = [link for link in g["links"] if link[1] != "MASK"]   # no mask: the padding is the mask
    return g


def several_holes():
    fill = local_fill_node("fill", [800, 480], "a bed of red and yellow tulips in the lawn, soft daylight")
    g = single("several_holes", fill, image=BEDS,
               extra_nodes=[*loaders(400, 40),
                            N("crops", "PreviewImage", [800, 980], "One crop per region", size=[400, 360])],
               extra_links=[*model_links("fill"), ("prep", "image", "crops", "images")],
               prep_widgets={"regions": "separate", "region_gap": 64, "target_mp": 3.0},
               note_text="Several holes in one photo (2048x1536, three patches of lawn masked).\n\nMaskPrep's "
               "regions = separate crops each part of the mask on its own (parts closer than region_gap join): "
               "three small crops instead of one crop around all three, each filled at its own scale. The "
               "regions of an image share target_mp (3.0 here: about 1 MP each). One Paste Back puts every "
               "region back into the one photo; color_match corrects the fill's colour drift at the seams.\n\n"
               "Swap FLUX Fill (local) for the fal.ai or WaveSpeedAI node to fill the regions there: they run "
               "at the same time and each is billed at its own size.\n\n" + MODELS)
    g["nodes"] = [dict(n, widgets={**n["widgets"], "color_match": 0.5}) if n["key"] == "paste" else n
                  for n in g["nodes"]]
    return g


def ab_compare():
    nodes = [load("load", PHOTO, [40, 480]), prep([400, 480], max_side=1536), *loaders(400, 40),
             N("local", "FluxFillLocal", [800, 40], "A: local", prompt=DOOR, seed=SEED, control_after_generate="fixed"),
             N("fal", "FalFill", [800, 540], "B: fal.ai", prompt=DOOR, seed=SEED, control_after_generate="fixed"),
             N("ws", "WaveSpeedFill", [800, 1520], "C: WaveSpeedAI", prompt=DOOR, seed=SEED,
               control_after_generate="fixed"),
             N("paste_a", "PasteBack", [1240, 40], "Paste Back A"),
             N("paste_b", "PasteBack", [1240, 540], "Paste Back B"),
             N("paste_c", "PasteBack", [1240, 1520], "Paste Back C"),
             N("ab", "ImageStitch", [1540, 540], "A | B", direction="right", spacing_width=16),
             N("abc", "ImageStitch", [1860, 540], "A | B | C", direction="right", spacing_width=16),
             N("save", "SaveImage", [2180, 540], filename_prefix="FluxFill/ab_compare"),
             note([40, 900], "A/B: one MaskPrep feeds FLUX Fill local (A), fal.ai (B) and WaveSpeedAI (C) with the "
                  "same prompt and seed; each is pasted back and the three are saved side by side (left to "
                  "right: A, B, C). Needs the local models and both API keys; bypass (Ctrl+B) a fill and "
                  "its Paste Back to leave it out.\n\n" + MODELS)]
    links = [("load", "IMAGE", "prep", "image"), ("load", "MASK", "prep", "mask"), *model_links("local"),
             *fill_chain("local", paste_key="paste_a"), *fill_chain("fal", paste_key="paste_b"),
             *fill_chain("ws", paste_key="paste_c"), ("paste_a", "image", "ab", "image1"),
             ("paste_b", "image", "ab", "image2"), ("ab", "IMAGE", "abc", "image1"),
             ("paste_c", "image", "abc", "image2"), ("abc", "IMAGE", "save", "images")]
    return {"nodes": nodes, "links": links}


WORKFLOWS = {"local_fill": local_fill, "fal_fill": fal_fill, "wavespeed_fill": wavespeed_fill,
             "large_photo_edit": large_photo_edit, "outpaint": outpaint, "ab_compare": ab_compare,
             "several_holes": several_holes}

BUILD_JS = """
const spec = arguments[0];
app.graph.clear();
const made = {};
for (const s of spec.nodes) {
  const n = LiteGraph.createNode(s.type);
  if (!n) throw new Error('unknown node type ' + s.type);
  if (s.title) n.title = s.title;
  if (s.size) n.size = s.size;
  app.graph.add(n);
  n.pos = s.pos;
  for (const [name, value] of Object.entries(s.widgets)) {
    let w = (n.widgets || []).find(w => w.name === name);
    if (!w && name === 'control_after_generate') {   // named after its default where the spec gives one
      const seed = (n.widgets || []).find(w => w.name === 'seed');
      w = seed && (seed.linkedWidgets || [])[0];
    }
    if (!w) throw new Error(s.type + ' has no widget ' + name + ': ' + (n.widgets || []).map(w => w.name));
    w.value = value;
    if (w.callback) w.callback(value);
  }
  made[s.key] = n;
}
for (const [a, out, b, inp] of spec.links) {
  const A = made[a], B = made[b];
  const o = A.findOutputSlot(out), i = B.findInputSlot(inp);
  if (o < 0 || i < 0) throw new Error('no slot ' + a + '.' + out + ' -> ' + b + '.' + inp);
  if (!A.connect(o, B, i)) throw new Error('could not connect ' + a + '.' + out + ' -> ' + b + '.' + inp);
}
app.graph.setDirtyCanvas(true, true);
const p = await app.graphToPrompt();
// stringify here: undefined fields are dropped (WebDriver would turn them into nulls)
return JSON.stringify({ui: app.graph.serialize(), api: p.output});
"""


def tidy(ui: dict) -> dict:
    """Fields older frontends write and 1.47.12 leaves out (both frontends read them):
    outputs' slot_index, and "Node name for S&R" on every node that runs (SaveImage lacks it).
    SaveImage / PreviewImage lose the pass-through output only 0.30 has, which v0.3.75's
    frontend would show as a stray socket. Model loaders get their download metadata (MODEL_DOWNLOADS)."""
    for node in ui["nodes"]:
        if node["type"] in ("SaveImage", "PreviewImage"):
            assert not any(o.get("links") for o in node.get("outputs", [])), node
            node["outputs"] = []
        for i, out in enumerate(node.get("outputs", [])):
            out.setdefault("slot_index", i)
        if node["type"] not in ("Note", "MarkdownNote"):
            node.setdefault("properties", {}).setdefault("Node name for S&R", node["type"])
        if node["type"] in MODEL_LOADERS:
            node["properties"]["models"] = model_metadata(node)
    return ui


def model_metadata(node: dict) -> list:
    """properties.models of a loader node, in ComfyUI's template format: its model files in widget order."""
    return [{"name": v, "url": MODEL_DOWNLOADS[v][1], "directory": MODEL_DOWNLOADS[v][0]}
            for v in node["widgets_values"] if isinstance(v, str) and v in MODEL_DOWNLOADS]


def build(names=None, out_dir=HERE):
    with tempfile.TemporaryDirectory(prefix="fluxfill-build-") as tmp:
        base = make_base_dir(Path(tmp), test_packs=False)
        for folder, files in MODEL_FILES.items():
            for f in files:
                (base / "models" / folder / f).touch()     # listed in the loaders' menus, never loaded
        server = ComfyServer(base).start()
        try:
            with ComfyPage(server.url) as page:
                for name in names or WORKFLOWS:
                    # a fresh page per graph: 1.47.12 keeps widget values per node id across
                    # app.graph.clear(), so a reused page would leak the previous graph's values
                    page.open()
                    res = json.loads(page.js_async(BUILD_JS, WORKFLOWS[name]()))
                    tidy(res["ui"])
                    (out_dir / f"{name}.json").write_text(json.dumps(res["ui"], indent=2) + "\n")
                    (out_dir / "api").mkdir(exist_ok=True)
                    (out_dir / "api" / f"{name}.api.json").write_text(json.dumps(res["api"], indent=2) + "\n")
                    print("wrote", name, len(res["ui"]["nodes"]), "nodes, frontend", page.frontend_version)
        finally:
            server.stop()


if __name__ == "__main__":
    build(sys.argv[1:] or None)
