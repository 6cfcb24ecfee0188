"""numba compilation of the engine's loops (eager, cached on disk) and their input layout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np
from numpy.typing import NDArray

Function = TypeVar("Function", bound=Callable[..., Any])


def compiled(signature: Any) -> Callable[[Function], Function]:
    """Compile for `signature` when the module is imported, loading numba's disk cache (next
    to the source, or the user's cache directory) when it is there, so a process that imports
    the module ahead of a job (the worker's forkserver) has the code ready. Where no cache
    location is writable, compile in memory in each process instead."""

    def compile_(function: Function) -> Function:
        try:
            done: Function = numba.njit(signature, cache=True, nogil=True)(function)
        except RuntimeError:  # numba: "cannot cache function ...: no locator available"
            done = numba.njit(signature, nogil=True)(function)
        return done

    return compile_


def read_only(values: NDArray[Any]) -> NDArray[Any]:
    """A contiguous read-only view (a copy only if not contiguous): the one layout the loops
    are compiled for, since bars from pandas are read-only and computed arrays are not."""
    view = np.ascontiguousarray(values).view()
    view.flags.writeable = False
    return view
