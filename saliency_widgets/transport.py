"""numpy arrays ⇄ the wire format the widgets sync with the browser.

A wire array is a dict ``{"data": <bytes>, "shape": [...], "dtype": "float32"}``.
ipywidgets lifts every ``bytes``/``memoryview`` inside synced state out of the
JSON and sends it as a binary buffer, so arrays never travel as JSON lists of
floats. Extra keys (metadata such as the target an attribution belongs to) may
sit in the same dict, so that an array and its metadata change in one update.
The browser decodes it with ``js/src/decode.ts``.

An offline page over its size budget stores float arrays as 8-bit codes (:func:`quantized`,
dtype ``"q8"``): the browser decodes them back to float32 values, each within 1/254 of its
block's largest magnitude of the exact one.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

#: Trait metadata of traits holding wire arrays: synced to the browser, but never echoed back by
#: ipywidgets' ``echo_update`` (hosts such as marimo send the whole state on a change; the kernel
#: must not answer with megabytes the browser already has).
ARRAY_TRAIT = {"sync": True, "echo_update": False}

#: dtypes the browser decoder understands (little-endian on the wire).
WIRE_DTYPES = ("float32", "float64", "uint8", "int32")


def to_wire(array: Any, dtype: str = "float32", **meta: Any) -> dict[str, Any]:
    """``array`` as a wire dict (C order, little-endian ``dtype``), plus ``meta`` keys."""
    if dtype not in WIRE_DTYPES:
        raise ValueError(f"dtype must be one of {WIRE_DTYPES}, got {dtype!r}")
    reserved = {"data", "shape", "dtype"} & set(meta)
    if reserved:
        raise ValueError(f"metadata may not use the reserved keys {sorted(reserved)}")
    arr = np.ascontiguousarray(np.asarray(array), dtype=np.dtype(dtype).newbyteorder("<"))
    return {"data": memoryview(arr.reshape(-1)).cast("B"), "shape": list(arr.shape), "dtype": dtype, **meta}


#: The dtype of :func:`quantized` arrays.
Q8 = "q8"


def quantized(wire: Mapping[str, Any]) -> dict[str, Any]:
    """A float wire array as 8-bit codes (dtype ``"q8"``, the other keys kept): ``value ≈ (code − 128)
    / 127 × scale`` with one ``scales`` entry per row of the first axis (a Jacobian's rows, a stack of
    maps, an image's channels; one scale for a 1-D array). Zero stays exactly zero, and every value is
    within ``scale / 254`` of the original."""
    values = from_wire(wire).astype(np.float64)
    rows = values.reshape(len(values) if values.ndim > 1 else 1, -1)
    scales = np.abs(rows).max(axis=1, initial=0.0)
    safe = np.where(scales > 0, scales, 1.0)
    codes = (np.rint(rows / safe[:, None] * 127) + 128).astype(np.uint8)
    return {**wire, "data": memoryview(codes.reshape(-1)).cast("B"), "dtype": Q8,
            "scales": scales.astype(np.float32).tolist()}


def from_wire(wire: Mapping[str, Any]) -> np.ndarray:
    """The array held by a wire dict (a read-only view of its bytes where possible; a :func:`quantized`
    array decoded to float32)."""
    dtype = str(wire["dtype"])
    if dtype == Q8:
        codes = np.frombuffer(wire["data"], dtype=np.uint8).astype(np.float32)
        scales = np.asarray(wire["scales"], dtype=np.float32)
        values = (codes.reshape(len(scales), -1) - 128) / 127 * scales[:, None]
        return values.reshape(tuple(int(s) for s in wire["shape"]))
    if dtype not in WIRE_DTYPES:
        raise ValueError(f"unsupported wire dtype {dtype!r}")
    shape = tuple(int(s) for s in wire["shape"])
    flat = np.frombuffer(wire["data"], dtype=np.dtype(dtype).newbyteorder("<"))
    if flat.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"wire array of shape {shape} holds {flat.size} values")
    return flat.reshape(shape)


def wire_nbytes(wire: Mapping[str, Any]) -> int:
    """Bytes of the binary payload of a wire dict."""
    return memoryview(wire["data"]).nbytes
