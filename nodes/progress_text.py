"""Text on the node while it runs (ComfyUI's progress text), as the host's own API nodes show."""


def send_progress_text(text: str, unique_id) -> None:
    """Show `text` on node `unique_id`; a no-op without a running server (tests, scripts)."""
    if unique_id is None:
        return
    from server import PromptServer
    if getattr(PromptServer, "instance", None) is not None:
        PromptServer.instance.send_progress_text(text, unique_id)


def progress_text_sender(unique_id):
    """A FillHooks.progress callback that shows the text on the node."""
    return lambda fraction, text: send_progress_text(text, unique_id)
