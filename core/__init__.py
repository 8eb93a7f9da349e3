"""Pure logic of the pack. Nothing under core/ imports `comfy`, `nodes`, `folder_paths`
or `server`: these modules run and are tested without a ComfyUI host."""
