"""FalFill: FLUX fills on fal.ai (4 endpoints, one widget set) over the hosted core.

One widget set serves every endpoint. A widget the chosen endpoint does not take is left out
of the request; when its value differs from the widget's default, the report says it was
ignored (never an error: switching endpoints must not break a graph). Sentinels mean "the
endpoint's own default": steps / guidance / strength -1, output_format "default",
image_size "input" (the input image's size). Ranges are checked by the core's endpoint
table before anything is sent; defaults and ranges in the tooltips come from that table.

controlnets / controlnet_unions are JSON; an image field may hold a URL or a placeholder:
"$control_image" (the control_image input, 1 for all or 1 per source image), "$image"
(the source image itself) or "$mask" (the fill mask as an image).
"""
from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..core.hosted import endpoint_table
from ..core.hosted.errors import HostedValidationError
from ..core.hosted.provider import FalProvider
from . import endpoint_text as text
from .fill_shape import fill_schema, per_image
from .hosted_run import HostedRun, parse_json_widget, run_hosted

NODE = "FalFill"
ENDPOINTS = endpoint_table.endpoints_for("fal")
DEFAULT_ENDPOINT = "fal-ai/flux-lora-fill"
IMAGE_SIZES = ["input"] + list(endpoint_table.IMAGE_SIZE_PRESETS) + ["custom"]
PLACEHOLDERS = ("$control_image", "$image", "$mask")
CONTROLNET_EXAMPLE = ('[{"path": "InstantX/FLUX.1-dev-Controlnet-Canny", "control_image_url": '
                      '"$control_image", "conditioning_scale": 0.7}]')
UNION_EXAMPLE = ('[{"path": "InstantX/FLUX.1-dev-Controlnet-Union", "controls": [{"control_image_url": '
                 '"$control_image", "control_mode": "canny", "conditioning_scale": 0.7}]}]')
LAYER_EXAMPLE = '{"1": {"transformer.single_transformer_blocks.0": 0.5, "transformer.transformer_blocks.3": 1.2}}'

# widget -> the endpoint field it sets (the web extension greys widgets from this map)
WIDGET_FIELDS = {
    "image_size": "image_size", "width": "image_size", "height": "image_size",
    "steps": "num_inference_steps", "guidance": "guidance_scale", "strength": "strength",
    "enable_safety_checker": "enable_safety_checker", "safety_tolerance": "safety_tolerance",
    "enhance_prompt": "enhance_prompt", "output_format": "output_format",
    "acceleration": "acceleration", "paste_back": "paste_back",
    "resize_to_original": "resize_to_original", "sync_mode": "sync_mode",
    "fill_image": "fill_image", "in_context_fill": "fill_image", "use_prompt": "fill_image",
    "lora_stack": "loras", "lora_layer_scales": "loras",
    "controlnets": "controlnets", "controlnet_unions": "controlnet_unions",
    "control_image": "controlnets",
}
# widgets passed to the endpoint as they are, when it takes them
PLAIN_WIDGETS = ("enable_safety_checker", "safety_tolerance", "enhance_prompt", "acceleration",
                 "paste_back", "resize_to_original", "sync_mode")


def endpoint_default_input(widget: str, kind, what: str, step=None) -> io.Input:
    """steps / guidance / strength: -1 = the chosen endpoint's default (from the table)."""
    field = WIDGET_FIELDS[widget]
    _, high = text.widest(ENDPOINTS, field)
    extra = {"step": step} if step is not None else {}
    number = int if kind is io.Int else float
    return kind.Input(widget, default=number(-1), min=number(-1), max=number(high), **extra,
                      tooltip=f"{what} -1 = the endpoint's default: {text.defaults_text(ENDPOINTS, field)}. "
                              f"{text.who_takes(ENDPOINTS, field)}")


def boolean(widget: str, default: bool, tip: str) -> io.Input:
    return io.Boolean.Input(widget, default=default, tooltip=tip)


def widget_inputs() -> list:
    only = lambda field: text.only_prefix(ENDPOINTS, field)  # noqa: E731 - reads better inline
    return [
        io.Combo.Input("endpoint", options=ENDPOINTS, default=DEFAULT_ENDPOINT, tooltip=(
            f"fal.ai endpoint. {text.endpoint_choice_text(ENDPOINTS)}. Widgets an endpoint does not take "
            "are ignored.")),
        io.Combo.Input("image_size", options=IMAGE_SIZES, default="input", tooltip=(
            "Output size: input = the input image's size (recommended with MaskPrep), a fal preset, or "
            f"custom (width/height below). {text.who_takes(ENDPOINTS, 'image_size')}")),
        io.Int.Input("width", default=1024, min=16, max=14142, step=16,
                     tooltip="Output width when image_size is custom."),
        io.Int.Input("height", default=1024, min=16, max=14142, step=16,
                     tooltip="Output height when image_size is custom."),
        endpoint_default_input("steps", io.Int, "Inference steps."),
        endpoint_default_input("guidance", io.Float, "Guidance scale.", step=0.1),
        endpoint_default_input("strength", io.Float, "Inpainting strength (1 = remake the masked area).",
                               step=0.01),
        io.Combo.Input("output_format", options=["png", "jpeg", "default"], default="png", tooltip=(
            "File format fal returns: png (lossless, the default here), jpeg (smaller), or default = the "
            f"endpoint's own ({text.choice_defaults_text(ENDPOINTS, 'output_format')}).")),
        boolean("enable_safety_checker", True, "fal's NSFW checker (flagged outputs stop the node with an "
                f"error). {text.who_takes(ENDPOINTS, 'enable_safety_checker')}"),
        io.Combo.Input("safety_tolerance", options=["1", "2", "3", "4", "5", "6"], default="2", tooltip=(
            f"{only('safety_tolerance')}moderation level, 1 strictest .. 6 most permissive.")),
        boolean("enhance_prompt", False, f"{only('enhance_prompt')}let fal rewrite the prompt."),
        io.Combo.Input("acceleration", options=["none", "regular"], default="none", tooltip=(
            f"{only('acceleration')}backend speed preset (regular = faster, may change the result slightly).")),
        boolean("paste_back", True, f"{only('paste_back')}fal pastes the original back outside the mask."),
        boolean("resize_to_original", False, f"{only('resize_to_original')}resize the output to the input's size."),
        boolean("in_context_fill", False, f"{only('fill_image')}with fill_image connected: use the fill "
                                          "image as in-context reference."),
        boolean("use_prompt", False, f"{only('fill_image')}with fill_image connected: also use the prompt."),
        io.String.Input("lora_layer_scales", default="{}", multiline=False, tooltip=(
            f"{text.only_prefix(layer_endpoints(), 'loras')}per-layer scales for LoRAs of lora_stack, as JSON "
            "{LoRA position (1 = first in the stack) or hosted path: {layer: scale}}; it replaces that LoRA's "
            "single scale. Example: " + LAYER_EXAMPLE)),
        io.String.Input("controlnets", default="[]", multiline=True, tooltip=(
            f"{only('controlnets')}JSON list (at most 1) of {{path, control_image_url, conditioning_scale, "
            "config_url, variant, mask_image_url, mask_threshold, start_percentage, end_percentage}. Image "
            "fields take a URL or $control_image (the control_image input), $image (the source image), $mask "
            "(the fill mask). Example: " + CONTROLNET_EXAMPLE)),
        io.String.Input("controlnet_unions", default="[]", multiline=True, tooltip=(
            f"{only('controlnet_unions')}JSON list (at most 1) of {{path, config_url, variant, controls: "
            f"[{{control_image_url, control_mode ({', '.join(endpoint_table.CONTROL_MODES)}), "
            "conditioning_scale, ...}]}; placeholders as in controlnets. Example: " + UNION_EXAMPLE)),
        boolean("sync_mode", False, "fal returns the outputs inline (data URIs) and keeps no copy in your "
                                    "request history."),
        boolean("force_new", False, "Send a new (paid) request even when the same inputs already have a "
                                    "result in the on-disk cache or a pending request to resume."),
        io.Int.Input("max_concurrency", default=4, min=1, max=16,
                     tooltip="At most this many requests at once (one request per source image)."),
        io.Int.Input("timeout_s", default=600, min=1, max=86400, tooltip=(
            "Give up waiting after this many seconds per request. The request stays in the journal: running "
            "the same inputs again picks it up without paying twice.")),
    ]


def layer_endpoints() -> list[str]:
    return [e for e in ENDPOINTS if endpoint_table.get(e).takes("loras")
            and endpoint_table.get(e).rules["loras"].per_layer]


class FalFill(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return fill_schema(
            node_id=NODE, display_name="FLUX Fill (fal.ai)",
            description=("FLUX inpainting/outpainting on fal.ai: FLUX.1 Fill [dev] with LoRAs, [dev] "
                         "inpainting, Fill [pro] or flux-general with ControlNets. One request per source "
                         "image (concurrent), results cached on disk (re-runs are free) and journaled (a "
                         "crash or timeout resumes, never pays twice). Key: FAL_KEY or the FluxFill "
                         "settings, never a widget."),
            inputs=widget_inputs(),
            optional=[
                io.Image.Input("fill_image", optional=True, tooltip=(
                    f"{text.only_prefix(ENDPOINTS, 'fill_image')}an image placed into the masked area (1 for "
                    "all or 1 per source image).")),
                io.Image.Input("control_image", optional=True, tooltip=(
                    f"{names_taking('controlnets')}: the image that \"$control_image\" in controlnets / "
                    "controlnet_unions refers to (1 for all or 1 per source image).")),
            ],
            seed_control="fixed",
            search_aliases=["fal", "flux pro fill", "hosted inpaint"],
        )

    @classmethod
    def execute(cls, image, mask, prompt, seed, num_images, endpoint, lora_stack=None, fill_image=None,
                control_image=None, **widgets):
        count = image.shape[0]
        fills = per_image(fill_image, count, "fill_image", NODE) if fill_image is not None else None
        controls = per_image(control_image, count, "control_image", NODE) if control_image is not None else None
        params, ignored = widget_params(endpoint_table.get(endpoint), widgets, fill_image is not None)
        run = HostedRun(
            node=NODE, provider_class=FalProvider, endpoint=endpoint, params=params, ignored=ignored,
            force_new=widgets["force_new"], timeout_s=widgets["timeout_s"],
            max_concurrency=widgets["max_concurrency"],
            image_params=lambda i, source, fill_mask: resolve_images(
                params, source, fill_mask, fills[i] if fills else None, controls[i] if controls else None))
        return run_hosted(run, image, mask, prompt, seed, num_images, lora_stack, cls.hidden.unique_id)


def names_taking(field: str) -> str:
    return text.names(text.taking(ENDPOINTS, field))


DEFAULTS = {i.id: i.default for i in widget_inputs()}


def widget_params(endpoint: endpoint_table.Endpoint, widgets: dict, has_fill_image: bool) -> tuple[dict, list[str]]:
    """(params for the core, notes on ignored widgets). Placeholders stay strings here."""
    params, ignored = {}, []

    def offer(field: str, value, widget_names: tuple[str, ...]):
        if endpoint.takes(field):
            if value is not None:
                params[field] = value
        elif any(widgets[n] != DEFAULTS[n] for n in widget_names):
            shown = ", ".join(f"{n}={widgets[n]!r}" for n in widget_names if widgets[n] != DEFAULTS[n])
            ignored.append(f"{shown} ({endpoint.id} does not take {field})")

    size = None
    if widgets["image_size"] == "custom":
        size = {"width": int(widgets["width"]), "height": int(widgets["height"])}
    elif widgets["image_size"] != "input":
        size = widgets["image_size"]
    offer("image_size", size, ("image_size", "width", "height") if widgets["image_size"] == "custom"
          else ("image_size",))
    offer("num_inference_steps", None if widgets["steps"] < 0 else int(widgets["steps"]), ("steps",))
    offer("guidance_scale", None if widgets["guidance"] < 0 else float(widgets["guidance"]), ("guidance",))
    offer("strength", None if widgets["strength"] < 0 else float(widgets["strength"]), ("strength",))
    offer("output_format", None if widgets["output_format"] == "default" else widgets["output_format"],
          ("output_format",))
    for name in PLAIN_WIDGETS:
        offer(name, widgets[name], (name,))
    for name, example in (("controlnets", CONTROLNET_EXAMPLE), ("controlnet_unions", UNION_EXAMPLE)):
        value = parse_json_widget(NODE, name, widgets[name], list, example)
        if endpoint.takes(name):
            params[name] = value
        elif value:
            ignored.append(f"{name} ({endpoint.id} does not take {name})")
    if has_fill_image:
        if endpoint.takes("fill_image"):
            params["fill_image"] = {"fill_image_url": "$fill_image",
                                    "in_context_fill": bool(widgets["in_context_fill"]),
                                    "use_prompt": bool(widgets["use_prompt"])}
        else:
            ignored.append(f"fill_image input ({endpoint.id} does not take fill_image)")
    elif widgets["in_context_fill"] or widgets["use_prompt"]:
        ignored.append("in_context_fill/use_prompt (no fill_image connected)")
    layers = parse_json_widget(NODE, "lora_layer_scales", widgets["lora_layer_scales"], dict, LAYER_EXAMPLE)
    if layers and endpoint.takes("loras") and not endpoint.rules["loras"].per_layer:
        ignored.append(f"lora_layer_scales ({endpoint.id} takes one scale per LoRA; only "
                       f"{', '.join(layer_endpoints())} takes per-layer scales)")
    elif layers and endpoint.takes("loras"):
        params["lora_layer_scales"] = layers     # applied to the stack by the provider
    return params, ignored


def resolve_images(params: dict, image, mask, fill, control) -> dict:
    """A copy of params with placeholders replaced by this source image's tensors."""
    values = {"$image": image, "$mask": mask[..., None].expand(*mask.shape, 3),
              "$control_image": control, "$fill_image": fill}

    def convert(value, where):
        if isinstance(value, dict):
            return {k: convert(x, f"{where}.{k}") for k, x in value.items()}
        if isinstance(value, list):
            return [convert(x, f"{where}[{i}]") for i, x in enumerate(value)]
        if isinstance(value, str) and value.startswith("$"):
            if value not in values:
                raise HostedValidationError(f"{NODE}: {where}: unknown placeholder {value!r}; use one of "
                                 f"{', '.join(PLACEHOLDERS)} or a URL")
            if values[value] is None:
                raise HostedValidationError(f"{NODE}: {where} is {value!r} but no control_image is connected: "
                                 f"connect one, or use $image / $mask / a URL")
            return values[value]
        return value

    return {k: convert(v, k) if k in ("controlnets", "controlnet_unions", "fill_image") else v
            for k, v in params.items()}
