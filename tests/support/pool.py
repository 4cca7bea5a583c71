"""A pool of running things (servers, in-process apps) shared by key: every holder of a key
gets the same one, and one nobody holds is kept for a later ask while at most `keep` are."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Shared(Generic[T]):
    """Things started from context managers, one per key; the idle ones end oldest first."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self.busy: dict[Hashable, tuple[T, AbstractContextManager[T], int]] = {}
        self.idle: OrderedDict[Hashable, tuple[T, AbstractContextManager[T]]] = OrderedDict()

    @contextmanager
    def hold(
        self,
        key: Hashable,
        start: Callable[[], AbstractContextManager[T]],
        alive: Callable[[T], bool] = lambda _: True,
    ) -> Iterator[T]:
        """The thing for `key`, entered from `start()` when there is none; on release it is
        kept idle if `alive` says it still runs, else ended."""
        if key in self.busy:
            thing, context, holders = self.busy[key]
        elif key in self.idle:
            (thing, context), holders = self.idle.pop(key), 0
        else:
            context = start()
            thing, holders = context.__enter__(), 0
        self.busy[key] = (thing, context, holders + 1)
        try:
            yield thing
        finally:
            thing, context, holders = self.busy.pop(key)
            if holders > 1:
                self.busy[key] = (thing, context, holders - 1)
            elif alive(thing):
                self.idle[key] = (thing, context)
                while len(self.idle) > self.keep:
                    self.idle.popitem(last=False)[1][1].__exit__(None, None, None)
            else:
                context.__exit__(None, None, None)

    def close(self) -> None:
        """End everything, held or idle."""
        held = [(thing, context) for thing, context, _ in self.busy.values()]
        for _, context in [*self.idle.values(), *held]:
            context.__exit__(None, None, None)
        self.idle.clear()
        self.busy.clear()
