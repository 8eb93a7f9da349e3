"""The pack's command-line side: a client of a running ComfyUI server (API mode), used by
`run.py` at the pack root. Not part of the node pack and not fill logic: it only talks HTTP
and websocket to ComfyUI, and never imports ComfyUI itself.

errors      RunnerError(message, code, saved), EXIT_OK / EXIT_FAILED / EXIT_USAGE /
            EXIT_TIMEOUT / EXIT_INTERRUPTED
workflow    load_workflow(path), resolve_node(prompt, ref), parse_value(text),
            apply_set(prompt, "NODE.INPUT=VALUE"), randomize_seeds(prompt, rng),
            image_target(prompt, "[NODE=]PATH")
runner      Client(server) (check, upload_image, queue, history, interrupt, download),
            Progress, run(workflow, server, out_dir, timeout) -> [saved paths]
"""
