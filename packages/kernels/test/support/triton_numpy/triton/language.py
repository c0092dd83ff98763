"""numpy versions of the triton.language operations used by the HybridAttention kernels. Pointers
are (flat buffer, element offsets); every load and store is bounds-checked (masked-off lanes
excepted); tf32 dot operands are truncated to 10 mantissa bits like the tensor cores' inputs."""
import builtins

import numpy as np

constexpr = object
float16, float32, int32, int64 = np.float16, np.float32, np.int32, np.int64


class Tensor(np.ndarray):
    def to(self, dtype, bitcast=False):
        return (self.view(dtype) if bitcast else self.astype(dtype)).view(Tensor)


def _t(x):
    return np.asarray(x).view(Tensor)


class Scalar(int):
    def to(self, dtype, bitcast=False):
        return Scalar(self)


class Ptr:
    def __init__(self, buf, off=0):
        self.buf, self.off = buf, off

    def __add__(self, x):
        return Ptr(self.buf, self.off + (x if isinstance(x, int) else np.asarray(x)))

    __radd__ = __add__


def program_id(axis):
    from . import PID
    return Scalar(PID[axis])


def arange(lo, hi):
    return _t(np.arange(lo, hi, dtype=np.int32))


def full(shape, value, dtype):
    return _t(np.full(shape, value, dtype=dtype))


def zeros(shape, dtype):
    return _t(np.zeros(shape, dtype=dtype))


def _check(off, n, what):
    if off.size and (off.min() < 0 or off.max() >= n):
        raise IndexError(f"{what} out of bounds: offsets [{off.min()}, {off.max()}] of {n}")


def load(p, mask=None, other=0.0):
    off = np.asarray(p.off, dtype=np.int64)
    if mask is None:
        _check(off, p.buf.size, "load")
        return _t(p.buf[off])
    mask = np.broadcast_to(np.asarray(mask), off.shape)
    _check(off[mask], p.buf.size, "masked load")
    vals = p.buf[np.where(mask, off, 0)] if p.buf.size else np.zeros(off.shape, p.buf.dtype)
    return _t(np.where(mask, vals, np.asarray(other).astype(p.buf.dtype)).astype(p.buf.dtype))


def store(p, value, mask=None):
    off = np.asarray(p.off, dtype=np.int64)
    value = np.broadcast_to(np.asarray(value), off.shape).astype(p.buf.dtype)
    mask = np.ones(off.shape, bool) if mask is None else np.broadcast_to(np.asarray(mask), off.shape)
    _check(off[mask], p.buf.size, "store")
    p.buf[off[mask]] = value[mask]


def _tf32(x):
    return (np.asarray(x, dtype=np.float32).view(np.int32) & np.int32(-8192)).view(np.float32)


def dot(a, b, acc=None, input_precision=None):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == np.float32 or b.dtype == np.float32:
        assert input_precision == "tf32", "float32 dots are compiled as tf32 here"
        a, b = _tf32(a), _tf32(b)
    r = a.astype(np.float32) @ b.astype(np.float32)
    return _t(r if acc is None else np.asarray(acc) + r)


def trans(x):
    return _t(np.asarray(x).T)


def where(c, a, b):
    return _t(np.where(c, a, b))


def maximum(a, b):
    return _t(np.maximum(a, b))


def minimum(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return builtins.min(a, b)
    return _t(np.minimum(a, b))


def max(x, axis):  # noqa: A001 (Triton's name)
    return _t(np.asarray(x).max(axis))


def sum(x, axis):  # noqa: A001
    return _t(np.asarray(x).sum(axis))


class math:
    @staticmethod
    def exp2(x):
        return _t(np.exp2(np.asarray(x, dtype=np.float32)))
