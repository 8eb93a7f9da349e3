"""Hosted fills (fal.ai, WaveSpeedAI): the pure core. No comfy imports.

Public API
----------
endpoint_table ENDPOINTS {id: Endpoint}, FIELDS, Rule, Field, Price, get(id),
               endpoints_for(provider), canonical_name(name), ALIASES, IMAGE_SIZE_PRESETS,
               CONTROL_MODES, SEED_MAX, NARROWEST_SEED_MAX (the fill nodes' seed max),
               FAL_DATA_URI_LIMIT, PROVIDER_TITLES
params         validate(id, params) -> dict, split_params(id, params) -> (taken, ignored),
               build_payload(id, validated, image_url, mask_url) -> dict,
               map_images(params, fn), output_size(id, validated, input_size),
               is_image_value(v), number_text(x)
presentation   describe(id) -> [row], markdown_table(id) -> str
pricing        estimate(id, w, h, n) / estimate_for(id, validated, input_size) /
               actual(id, sizes) -> PriceEstimate(usd | None, basis); price_text(id)
keys           load_key(provider, user_dir=None, env=None) -> Secret; save_key(...);
               Secret (repr '***', .reveal()); ENV_VARS; key file <user_dir>/fluxfill/keys.json
retry          Deadline(seconds), RetryPolicy(tries, backoff, ...), retry predicates never /
               polls / fal_submit / positively_refused (resp, exc) -> bool
transport      check_url(url, what), is_loopback_host(host), origin(url), Redactor,
               Transport (auth-scoped requests with retries), make_session()
client         PollSchedule(first, factor, max), QueueClient.run(endpoint, payload, progress=,
               cancelled=, deadline=, on_submitted=, handle=) -> (handle, result)
fal            FalClient(key, queue_url=, rest_url=, policy=, poll=) / FalClient.from_env(user_dir):
               upload(bytes, content_type, file_name) -> url;
               submit(endpoint, payload) -> FalHandle;
               status(handle); result(handle); cancel(handle) -> str; run(...); download(url, ...)
wavespeed      WaveSpeedClient(key, api_url=, ...) / from_env(user_dir): the same methods
journal        Journal(state_dir), ResultCache(state_dir), Ledger(state_dir), input_hash(...)
images         encode_image, encode_mask, data_uri, decode_image (safe), sha256
preparation    Prepared, prepare(endpoint, provider_name, request): all decided before the network
bookkeeping    Bookkeeping(state_dir, provider, label, endpoint): journal / cache / ledger writes
               (a failed write becomes a note, never a lost paid result)
provider       FalProvider(client, endpoint, state_dir, force_new=False, deadline_s=600,
               nsfw="raise"|"keep", max_download_bytes=, data_uri_limit=) and WaveSpeedProvider:
               .fill(FillRequest, FillHooks) -> FillResult; .estimate(FillRequest); .prepare(...);
               from_env(endpoint, user_dir, client_kw={...}, **provider_kw); nsfw_message(meta)
               (prepare(req) then fill(req) with the same object encodes the PNGs once; cancel
               interrupts polls/uploads/downloads in flight, never a submit; bookkeeping write
               failures become meta["notes"], never a lost paid result)
errors         HostedError and subclasses (RemoteCancelled, DeadlineExceeded, NSFWBlocked, ...)

Node-layer recipe (FalFill / WaveSpeedFill):
    provider = FalProvider.from_env(endpoint, folder_paths.get_user_directory(),
                                    force_new=force_new, deadline_s=timeout)
    params, ignored = split_params(endpoint, widget_values)   # the endpoint's own fields
    req = FillRequest(image=img, mask=m, prompt=..., seed=..., num_images=..., loras=stack,
                      params=validate(endpoint, {**params, "prompt": p, ...}) or params)
    results = run_batch(provider, requests, FillHooks(progress=..., cancelled=...), concurrency=4)
    # RemoteCancelled -> raise comfy.model_management.InterruptProcessingException()
    # NSFWBlocked -> show e.args[0]; e.result holds the images if the node wants them

Environment: FAL_KEY, WAVESPEED_API_KEY (win over keys.json); FAL_QUEUE_URL, FAL_REST_URL,
WAVESPEED_API_URL (plain http only to loopback). State (journal, cache, ledger) lives in
<user_dir>/fluxfill/.
"""
from .errors import (AuthError, DeadlineExceeded, HostedError, HostedValidationError,  # noqa: F401
                     InsecureURL, MissingKey, NSFWBlocked, OutputRefused, RemoteCancelled,
                     RemoteFailed, RemoteRejected, ResultUnavailable, SubmitUncertain, TransportError)
