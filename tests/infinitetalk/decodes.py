"""Counting how often our code decodes a media file: the audio's one pass is checked by it."""

from collections import Counter
from pathlib import Path
from typing import Any

import av
import pytest


class _CountedContainer:
    """A PyAV input container that counts its `decode` calls and is otherwise itself."""

    def __init__(self, container: Any, path: str, counts: Counter[str]) -> None:
        self._container = container
        self._path = path
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def __enter__(self) -> "_CountedContainer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._container.close()

    def decode(self, *args: Any, **kwargs: Any) -> Any:
        self._counts[self._path] += 1
        return self._container.decode(*args, **kwargs)


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """From now on, how many times each file opened for reading was decoded, by its path."""
    counts: Counter[str] = Counter()
    real_open = av.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        container = real_open(file, *args, **kwargs)
        if isinstance(container, av.container.InputContainer):
            return _CountedContainer(container, str(Path(str(file)).resolve()), counts)
        return container

    monkeypatch.setattr(av, "open", counting_open)
    return counts
