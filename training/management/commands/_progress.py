"""A tqdm bar driven by the services' `progress(fraction, message)` callbacks."""

from __future__ import annotations

from tqdm import tqdm


class ProgressBar:
    def __init__(self, description: str, *, disable: bool = False):
        self.bar = tqdm(total=1000, desc=description, unit="‰", disable=disable)

    def __call__(self, fraction: float, message: str = "") -> None:
        target = int(min(max(fraction, 0.0), 1.0) * 1000)
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        if message:
            self.bar.set_postfix_str(message[:60], refresh=False)

    def close(self) -> None:
        self.bar.close()
