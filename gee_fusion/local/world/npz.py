"""Fast reading and writing of the demo world's block files: uncompressed ``.npz`` archives, as
``np.savez`` writes them and ``np.load`` reads them.

``np.load`` opens every member as a file of the archive, parses its header with ``ast`` and copies
its bytes; for a block of 20 small arrays that costs several times the read itself. :func:`read`
reads the file once into one buffer and returns its arrays as views of it, after checking every
member's CRC-32 as ``zipfile`` does. Anything it does not expect (compression, object arrays, a
damaged archive) raises :class:`ValueError` or :class:`zipfile.BadZipFile`. :func:`write` stores
each array's memory as it is (``np.savez`` copies it in chunks first): about half the time.
"""

from __future__ import annotations

import ast
import functools
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
"""A ZIP local file header: signature ... file name length, extra field length (30 bytes)."""
NPY_MAGIC = b"\x93NUMPY"


def read(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at ``path``, by name (views of one writable buffer).

    Raises:
        FileNotFoundError: No such file.
        zipfile.BadZipFile: Not a ZIP archive, or a member's CRC-32 does not match its bytes.
        ValueError: A member that is not a plain uncompressed ``.npy`` array.
    """
    with open(path, "rb") as fh:
        with zipfile.ZipFile(fh) as archive:
            members = archive.infolist()
        fh.seek(0)
        buf = bytearray(os.fstat(fh.fileno()).st_size)
        if fh.readinto(buf) != len(buf):
            raise ValueError("the file changed while it was read")
    view = memoryview(buf)
    out: dict[str, np.ndarray] = {}
    for info in members:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 1:
            raise ValueError(f"member {info.filename} is compressed or encrypted")
        start = _data_offset(buf, info)
        data = view[start : start + info.file_size]
        if len(data) != info.file_size:
            raise ValueError(f"member {info.filename} runs past the end of the file")
        if zlib.crc32(data) != info.CRC:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        out[name] = _array(buf, start, info.file_size)
    return out


def _data_offset(buf: bytearray, info: zipfile.ZipInfo) -> int:
    """Where a member's bytes start (after its local header, name and extra field)."""
    head = bytes(buf[info.header_offset : info.header_offset + LOCAL_HEADER.size])
    if len(head) != LOCAL_HEADER.size:
        raise ValueError(f"member {info.filename} has no local header")
    fields = LOCAL_HEADER.unpack(head)
    if fields[0] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header of {info.filename!r}")
    return info.header_offset + LOCAL_HEADER.size + fields[9] + fields[10]


def _array(buf: bytearray, start: int, size: int) -> np.ndarray:
    """The ``.npy`` array stored in ``buf[start : start + size]``, as a view."""
    if bytes(buf[start : start + 6]) != NPY_MAGIC:
        raise ValueError("not a .npy member")
    major = buf[start + 6]
    if major == 1:
        (length,), width = struct.unpack_from("<H", buf, start + 8), 2
    elif major in (2, 3):
        (length,), width = struct.unpack_from("<I", buf, start + 8), 4
    else:
        raise ValueError(f"unknown .npy version {major}")
    body = start + 8 + width
    dtype, shape, fortran = _header(bytes(buf[body : body + length]))
    count = math.prod(shape)
    offset = body + length
    if offset + count * dtype.itemsize != start + size:
        raise ValueError("a .npy member whose size does not match its header")
    flat = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


@functools.lru_cache(maxsize=256)
def _header(text: bytes) -> tuple[np.dtype, tuple[int, ...], bool]:
    """(dtype, shape, Fortran order) of a ``.npy`` header (no objects); block files repeat a few
    headers."""
    try:
        header = ast.literal_eval(text.decode("latin1"))
        dtype = np.lib.format.descr_to_dtype(header["descr"])
        shape = tuple(int(n) for n in header["shape"])
        fortran = bool(header["fortran_order"])
    except (SyntaxError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"a bad .npy header: {exc}") from exc
    if dtype.hasobject:
        raise ValueError("an object .npy member")
    return dtype, shape, fortran


def write(fh: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """Store ``arrays`` in the open binary file ``fh`` as an uncompressed ``.npz`` (what
    ``np.savez(fh, **arrays)`` writes, readable by ``np.load`` and :func:`read`)."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            arr = np.asanyarray(value)
            if arr.dtype.hasobject:
                raise ValueError(f"{name}: object arrays are not stored")
            header = np.lib.format.header_data_from_array_1_0(arr)
            data = arr.T if header["fortran_order"] else np.ascontiguousarray(arr)
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array_header_1_0(member, header)
                if data.size:
                    member.write(data.reshape(-1).view(np.uint8).data)
