"""LoraStack: up to three LoRAs as a LORA_STACK, with plain widgets (no canvas widgets).

Each row names a local file (models/loras), a hosted path (for fal.ai / WaveSpeed fills) or
both. The output is the Efficiency/Comfyroll LORA_STACK format, so their loaders read it too.
"""
import folder_paths
from comfy_api.v0_0_2 import io

from ..core import lora_list
from .fill_shape import LoraStackType
from .schema_features import schema_extras

ROWS = 3
ROW_FIELDS = ("on", "name", "hosted", "strength_model", "strength_clip")


def row_inputs(row: int, loras: list) -> list:
    prefix = f"lora_{row}_"
    return [
        io.Boolean.Input(prefix + "on", default=True, label_on="on", label_off="off",
                         tooltip=f"Row {row} on/off: an off row is left out of the stack."),
        io.Combo.Input(prefix + "name", options=["None"] + loras, default="None",
                       tooltip=f"Row {row}: LoRA file in models/loras, for local fills. None = no local file."),
        io.String.Input(prefix + "hosted", default="", multiline=False,
                        tooltip=f"Row {row}: the same LoRA for hosted fills (fal.ai, WaveSpeed): an https "
                                "URL or a Hugging Face repo (owner/name). Leave empty for local-only."),
        io.Float.Input(prefix + "strength_model", default=1.0, min=-100.0, max=100.0, step=0.01,
                       tooltip=f"Row {row}: strength on the diffusion model (hosted fills use it as the scale)."),
        io.Float.Input(prefix + "strength_clip", default=1.0, min=-100.0, max=100.0, step=0.01,
                       tooltip=f"Row {row}: strength on the text encoder (local fills only)."),
    ]


class LoraStack(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        loras = folder_paths.get_filename_list("loras")
        rows = [widget for row in range(1, ROWS + 1) for widget in row_inputs(row, loras)]
        return io.Schema(
            node_id="LoraStack",
            display_name="LoRA Stack (FluxFill)",
            category="FluxFill/lora",
            description=("Stacks up to three LoRAs for the fill nodes: a local file (models/loras), a hosted "
                         "path (URL or Hugging Face repo) for hosted fills, or both. Chain stacks through "
                         "lora_stack; Efficiency and Comfyroll stacks are accepted and read this one."),
            inputs=[*rows, LoraStackType.Input(
                "lora_stack", optional=True,
                tooltip="A stack to extend (from another LoraStack, Efficiency or Comfyroll); it comes first.")],
            outputs=[
                LoraStackType.Output("stack_out", display_name="lora_stack", tooltip=(
                    "The incoming stack followed by this node's active rows: (lora_name, strength_model, "
                    "strength_clip) tuples, the format of Efficiency/Comfyroll stacks.")),
                io.String.Output("loras", display_name="loras",
                                 tooltip="Readable list of the active LoRAs, one per line."),
            ],
            **schema_extras(search_aliases=["lora stacker", "lora list"]),
        )

    @classmethod
    def execute(cls, lora_stack=None, **widgets):
        rows = []
        for row in range(1, ROWS + 1):
            on, local, hosted, strength_model, strength_clip = (widgets[f"lora_{row}_{name}"] for name in ROW_FIELDS)
            rows.append({"on": on, "local": local, "hosted": hosted,
                         "strength_model": strength_model, "strength_clip": strength_clip})
        try:
            stack = lora_list.stack_from_rows(rows, lora_stack)
        except ValueError as e:
            raise ValueError(f"LoraStack: {e}") from None
        return io.NodeOutput(stack, lora_list.describe(stack))
