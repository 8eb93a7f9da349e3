"""Progress bars on stderr, drawn by tqdm (ComfyUI ships it, so the runner adds no library).

Progress    one run: a line per node, a step bar `|####....| k/N` while a node reports steps,
            its progress text as the bar's postfix.
BatchBar    a whole batch: done / failed / total, rate, ETA and the spend so far; a failed job
            gets its own line above the bar.
On a terminal the bars redraw in place; in a log (not a tty) each bar is written when it
starts and when it ends, never a flood of updates.
"""
import sys
from dataclasses import dataclass, field

from tqdm import tqdm

STEP_FORMAT = "{desc} |{bar:20}| {n_fmt}/{total_fmt}{postfix}"
LINE_FORMAT = "{desc}{postfix}"
BATCH_FORMAT = ("{desc} |{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]{postfix}")


def is_tty(stream) -> bool:
    return getattr(stream, "isatty", lambda: False)()


def _bar(stream, log_interval: float = float("inf"), **kw) -> tqdm:
    """A tqdm bar: redrawn at most every 0.1 s on a terminal, every `log_interval` s in a log."""
    tty = is_tty(stream)
    return tqdm(file=stream, leave=True, ascii=".#", dynamic_ncols=tty,
                mininterval=0.1 if tty else log_interval, **kw)


@dataclass
class Progress:
    """Renders one run's websocket events (see runner._follow_ws)."""
    prompt: dict
    stream: object = sys.stderr
    node: str | None = None
    max: int = 0
    done_nodes: set = field(default_factory=set)
    bar: object = None

    def label(self, nid) -> str:
        n = self.prompt.get(str(nid), {})
        title = (n.get("_meta") or {}).get("title") or n.get("class_type", "?")
        return f"#{nid} {title}"

    def _open(self, value: int = 0):
        self.close()
        head = f"[{len(self.done_nodes)}/{len(self.prompt)} nodes] {self.label(self.node)}"
        self.bar = _bar(self.stream, total=self.max or None, initial=value, desc=head,
                        bar_format=STEP_FORMAT if self.max else LINE_FORMAT)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def executing(self, nid):
        if self.node is not None:
            self.done_nodes.add(self.node)
        self.node, self.max = nid, 0
        self.close()
        if nid is not None:
            self._open()

    def cached(self, nodes):
        self.done_nodes.update(nodes)

    def step(self, nid, value, maximum):
        if nid is not None and nid != self.node:
            self.executing(nid)
        value, maximum = int(value), int(maximum)
        if self.bar is None or maximum != self.max:
            self.max = maximum
            self._open(value)
        else:
            self.bar.update(value - self.bar.n)

    def progress_text(self, nid, text):
        text = text.strip().splitlines()[-1] if text.strip() else ""
        if self.bar is not None:
            self.bar.set_postfix_str(text[:100], refresh=is_tty(self.stream))

    def finish(self):
        if self.node is not None:
            self.done_nodes.add(self.node)
        self.node, self.max = None, 0
        self.close()
        self.stream.write(f"[{len(self.done_nodes)}/{len(self.prompt)} nodes] done\n")
        self.stream.flush()


class BatchBar:
    """done / failed / total, rate and ETA (tqdm's), spend so far (known prices only)."""

    def __init__(self, total: int, already_done: int = 0, stream=sys.stderr):
        self.stream = stream
        self.done, self.failed, self.spend, self.unknown = already_done, 0, 0.0, 0
        self.bar = _bar(stream, log_interval=10.0, total=total, initial=already_done, desc="batch",
                        unit="job", bar_format=BATCH_FORMAT)
        self._postfix()

    def _postfix(self):
        spend = f"${self.spend:.4f}" + (f" (+{self.unknown} unpriced)" if self.unknown else "")
        self.bar.set_postfix_str(f"done {self.done}, failed {self.failed}, spend {spend}", refresh=False)

    def job_done(self, cost_usd):
        self.done += 1
        if cost_usd is None:
            self.unknown += 1
        else:
            self.spend += cost_usd
        self._postfix()
        self.bar.update(1)

    def job_failed(self, name: str, error: str):
        self.failed += 1
        self._postfix()
        self.bar.write(f"failed: {name}: {error}", file=self.stream)
        self.bar.update(1)

    def note(self, text: str):
        self.bar.write(text, file=self.stream)

    def close(self):
        self._postfix()
        self.bar.close()
