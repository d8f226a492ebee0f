"""Optional progress bars: tqdm when installed, a plain text line otherwise."""

from __future__ import annotations

import contextlib
import sys

__all__ = ["progress_bar"]


class _TextBar:
    """Minimal stand-in for tqdm: rewrites one line on stderr."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.n = total, desc, 0

    def update(self, n: int) -> None:
        self.n += n
        sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total}")
        if self.n >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        pass


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool, desc: str = "steps", unit: str = "step"):
    """Yield a bar with ``update(n)`` when ``enabled``, else ``None``."""
    if not enabled:
        yield None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is an optional extra
        bar = _TextBar(total, desc)
    else:
        bar = tqdm(total=total, desc=desc, unit=unit)
    try:
        yield bar
    finally:
        bar.close()
