"""LoraStack: up to three LoRAs as a LORA_STACK, with plain widgets (no canvas widgets).

Each row names a local file (models/loras), a hosted path (for fal.ai / WaveSpeed fills) or
both. The output is the Efficiency/Comfyroll LORA_STACK format, so their loaders read it too.
"""
import folder_paths

from ..core import lora_list

ROWS = 3


def _row_inputs(i: int, loras: list) -> dict:
    p = f"lora_{i}_"
    return {
        p + "on": ("BOOLEAN", {"default": True, "label_on": "on", "label_off": "off",
                               "tooltip": f"Row {i} on/off: an off row is left out of the stack."}),
        p + "name": (["None"] + loras, {"default": "None",
                                         "tooltip": f"Row {i}: LoRA file in models/loras, for local fills. "
                                                    "None = no local file."}),
        p + "hosted": ("STRING", {"default": "", "multiline": False,
                                  "tooltip": f"Row {i}: the same LoRA for hosted fills (fal.ai, WaveSpeed): "
                                             "an https URL or a Hugging Face repo (owner/name). "
                                             "Leave empty for local-only."}),
        p + "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01,
                                         "tooltip": f"Row {i}: strength on the diffusion model "
                                                    "(hosted fills use it as the scale)."}),
        p + "strength_clip": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01,
                                        "tooltip": f"Row {i}: strength on the text encoder (local fills only)."}),
    }


class LoraStack:
    NODE_ID = "LoraStack"
    DISPLAY_NAME = "LoRA Stack (FluxFill)"
    CATEGORY = "FluxFill/lora"
    DESCRIPTION = ("Stacks up to three LoRAs for the fill nodes: a local file (models/loras), a hosted "
                   "path (URL or Hugging Face repo) for hosted fills, or both. Chain stacks through "
                   "lora_stack; Efficiency and Comfyroll stacks are accepted and read this one.")
    FUNCTION = "stack"
    RETURN_TYPES = ("LORA_STACK", "STRING")
    RETURN_NAMES = ("lora_stack", "loras")
    OUTPUT_TOOLTIPS = (
        "The incoming stack followed by this node's active rows: (lora_name, strength_model, "
        "strength_clip) tuples, the format of Efficiency/Comfyroll stacks.",
        "Readable list of the active LoRAs, one per line.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        loras = folder_paths.get_filename_list("loras")
        required = {}
        for i in range(1, ROWS + 1):
            required.update(_row_inputs(i, loras))
        return {
            "required": required,
            "optional": {
                "lora_stack": ("LORA_STACK", {"tooltip": "A stack to extend (from another LoraStack, "
                                                         "Efficiency or Comfyroll); it comes first."}),
            },
        }

    def stack(self, lora_stack=None, **widgets):
        rows = [{"on": widgets[f"lora_{i}_on"], "local": widgets[f"lora_{i}_name"],
                 "hosted": widgets[f"lora_{i}_hosted"],
                 "strength_model": widgets[f"lora_{i}_strength_model"],
                 "strength_clip": widgets[f"lora_{i}_strength_clip"]} for i in range(1, ROWS + 1)]
        try:
            stack = lora_list.stack_from_rows(rows, lora_stack)
        except ValueError as e:
            raise ValueError(f"LoraStack: {e}") from None
        return (stack, lora_list.describe(stack))
