"""The pack's command-line side: a client of running ComfyUI servers (API mode), used by
`run.py` at the pack root. Not part of the node pack and not fill logic: it talks HTTP and
websocket to ComfyUI and never imports ComfyUI itself (the batch estimate reads the pack's
pure price rules and crop arithmetic from core/).

errors         RunnerError(message, code, saved), Unreachable; EXIT_OK / EXIT_FAILED / EXIT_USAGE /
               EXIT_OVER_BUDGET / EXIT_TIMEOUT / EXIT_INTERRUPTED
workflow       load_workflow(path), resolve_node(prompt, ref), parse_value(text),
               apply_set(prompt, "NODE.INPUT=VALUE"), set_input(prompt, "NODE.INPUT", value),
               randomize_seeds(prompt, rng), image_target(prompt, "[NODE=]PATH"), batch_target(prompt, ref)
runner         Client(server) (check, has_node, spend_limit, upload_image, queue, queue_state, history,
               interrupt, download), run(workflow, server, out_dir, timeout) -> [saved paths]
progress       Progress (one run's node and step bars), BatchBar (a batch's bar): tqdm on stderr
batch          BatchOptions, run_batch(options) -> exit status: the batch mode of run.py
batch_inputs   read_inputs(folder | .csv | .jsonl) -> [Row], load_mask, upload_file, job_prompt, job_key
estimate       job_price(prompt, loader, size, mask) -> JobPrice, maskprep_size, summary
dispatch       Job, Server, Dispatcher (shortest queue, failover, collecting outputs and reports)
manifest       Manifest(DIR) (manifest.jsonl: load, append, rewrite), write_results (results.csv)
contact_sheet  input_thumb, output_thumb, write_sheet (contact_sheet.jpg)
"""
