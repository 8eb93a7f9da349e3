"""What a user sees of an error: the node's name first, then the problem, and no machine paths.

ComfyUI shows an exception as `<type>: <message>` in the UI, the API runner and /history.
The core's exception classes name a short module (core/hosted/errors.py sets it), so the type
reads `fluxfill.MissingKey`, not the pack's file-system path; this module makes the message
start with the node and replaces absolute paths of this machine (a server is often used from
another computer) with paths relative to ComfyUI's folder, e.g. `user/fluxfill/keys.json`.
"""
import os

import folder_paths


def relative_to_comfyui(text: str) -> str:
    """`text` with this machine's ComfyUI folders written relative to ComfyUI's folder."""
    user_dir = os.path.abspath(folder_paths.get_user_directory())
    base_dir = os.path.abspath(folder_paths.base_path)
    for folder, shown in ((user_dir, "user"), (base_dir, "")):
        if folder and folder != os.sep:
            text = text.replace(folder + os.sep, f"{shown}/" if shown else "").replace(folder, shown or ".")
    return text


def for_user(error: BaseException, node: str) -> BaseException:
    """The same exception (type and attributes kept), its message starting with `node: ` and
    free of absolute paths. Returns `error` for `raise for_user(e, node)`."""
    if error.args and isinstance(error.args[0], str):
        message = relative_to_comfyui(error.args[0])
        if not message.startswith(f"{node}:"):
            message = f"{node}: {message}"
        error.args = (message, *error.args[1:])
    return error
