"""Fast reading and writing of the demo world's block files: uncompressed ``.npz`` archives, as
``np.savez`` writes them and ``np.load`` reads them.

``np.load`` opens every member as a file of the archive, parses its header with ``ast`` and copies
its bytes; for a block of 20 small arrays that costs several times the read itself. :func:`read`
reads the file once into one buffer and returns its arrays as views of it, after checking every
member's checksum. Anything it does not expect (compression, object arrays, a damaged archive)
raises :class:`ValueError` or :class:`zipfile.BadZipFile`. :func:`write` stores each array's
memory as it is (``np.savez`` copies it in chunks first), its data at a 64-byte aligned offset of
the file (so the views :func:`read` returns are aligned).

**Integrity.** Every byte :func:`read` returns is checked against a checksum written with it. The
ZIP format's own CRC-32 of each member (what ``np.load`` checks) costs 0.8 ms for a 3.3 MiB block,
more than the read itself, and finding the members through ``zipfile`` another 0.1 ms. So
:func:`write` also puts an index in the archive comment (ignored by ``np.load``): each member's
name, place, size and CRC-32C (Castagnoli; hardware-accelerated by ``google_crc32c``, about 4 times
faster), followed by the CRC-32C of the index itself. :func:`read` uses that index when it is there
and the C implementation of CRC-32C is installed, else the ZIP directory and CRC-32s. The index
check is as complete as the ZIP one:

- it covers every byte of every member it returns (``.npy`` header and data), so a flipped bit, a
  truncated or zeroed part, or a member read from a wrong place fails it;
- the index is itself checked, so a damaged name, place or size fails (a damaged ZIP directory
  that the index does not need cannot change a pixel: only what the index names, checked, is read);
- a CRC-32C detects the same errors as a CRC-32 (every burst up to 32 bits, all but 2^-32 of the
  others);
- nothing is trusted from an earlier check: each read checks the bytes it has just copied into its
  own memory (never a mapping of the file, whose pages could change after the check), so a file
  replaced, rewritten or damaged by another process between two reads is caught all the same.
"""

from __future__ import annotations

import ast
import functools
import io
import json
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
"""A ZIP local file header: signature ... file name length, extra field length (30 bytes)."""
END_RECORD = struct.Struct("<4s4H2LH")
"""The ZIP end of central directory record: signature ... comment length (22 bytes)."""
CENTRAL_HEADER = struct.Struct("<4s6H3L5H2L")
"""A ZIP central directory entry: signature ... local header offset (46 bytes)."""
MADE_BY = (3 << 8) | 20
"""Central directory "version made by": Unix, ZIP 2.0."""
DOS_DATE = (0 << 9) | (1 << 5) | 1
"""1980-01-01 as an MS-DOS date (what ``zipfile`` writes for undated members)."""
NPY_MAGIC = b"\x93NUMPY"
ALIGN = 64
"""Arrays start at a multiple of this many bytes from the start of the file."""
INDEX_TAG = b'{"gee_fusion_index":'
"""Start of the archive comment that indexes the members (JSON, then ``#`` and its CRC-32C)."""
TAIL = 8192
"""Bytes read from the end of a file to find its index (an index of 22 members takes about 1.3 KiB)."""
Member = tuple[str, int, int, int]
"""(member name, offset of its bytes in the file, their size, their CRC-32C)."""


@functools.cache
def _castagnoli() -> Callable[[int, Any], int] | None:
    """``google_crc32c.extend`` when its C implementation is there (the pure Python one is far
    slower than ``zlib.crc32``), else None."""
    try:
        import google_crc32c
    except ImportError:
        return None
    if google_crc32c.implementation != "c":
        return None
    return cast(Callable[[int, Any], int], google_crc32c.extend)


def fast_crc32c() -> bool:
    """Whether block files are written with and read through their CRC-32C index (the C
    implementation of CRC-32C is installed)."""
    return _castagnoli() is not None


def crc32c(*parts: bytes | np.ndarray) -> int:
    """CRC-32C of the concatenated ``parts`` (bytes, or arrays that are not writeable: the C
    function takes read-only buffers only).

    Raises:
        RuntimeError: Without the C implementation (see :func:`fast_crc32c`).
    """
    extend = _castagnoli()
    if extend is None:
        raise RuntimeError("google_crc32c's C implementation is not installed")
    crc = 0
    for part in parts:
        crc = extend(crc, part)
    return crc


# -- reading ---------------------------------------------------------------------------------


def read(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file at ``path``, by name (views of one writable buffer).

    Raises:
        FileNotFoundError: No such file.
        zipfile.BadZipFile: Not a ZIP archive, or a member's checksum does not match its bytes.
        ValueError: A member that is not a plain uncompressed ``.npy`` array.
    """
    return read_part(path, None)[0]


def read_part(
    path: str | Path, names: Collection[str] | None
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The arrays ``names`` (every array if None) of the ``.npz`` file at ``path``, and the size in
    bytes of every member of the file, by array name.

    Through the index only the members named are read and checked (more are returned when the file
    has no index: every one). The arrays are views of one writable buffer.

    Raises:
        FileNotFoundError: No such file.
        KeyError: A name that is not in the file.
        zipfile.BadZipFile: Not a ZIP archive, or a member's checksum does not match its bytes.
        ValueError: A member that is not a plain uncompressed ``.npy`` array.
    """
    with open(path, "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        index = _index(_read_range(fh, max(0, size - TAIL), size)) if fast_crc32c() else None
        if index is None:
            out = _read_zip(_read_range(fh, 0, size))
            return out, {name: arr.nbytes for name, arr in out.items()}
        fields = [_field(name) for name, _, _, _ in index]
        sizes = {field: m[2] for field, m in zip(fields, index, strict=True)}
        wanted = [m for field, m in zip(fields, index, strict=True) if names is None or field in names]
        if names is not None and len(wanted) < len(set(names)):
            raise KeyError(f"{sorted(set(names) - set(sizes))} not in {path}")
        if not wanted:
            return {}, sizes
        low = min(start for _, start, _, _ in wanted) // ALIGN * ALIGN  # the arrays stay aligned
        buf = _read_range(fh, low, max(start + length for _, start, length, _ in wanted))
    frozen = buf.view()
    frozen.flags.writeable = False
    out = {}
    for name, start, length, crc in wanted:
        if crc32c(frozen[start - low : start - low + length]) != crc:
            raise zipfile.BadZipFile(f"Bad CRC-32C for file {name!r}")
        out[_field(name)] = _array(buf, start - low, length)
    return out, sizes


def _read_range(fh: io.RawIOBase, start: int, stop: int) -> np.ndarray:
    """Bytes ``start:stop`` of an open file, in a new array.

    Raises:
        ValueError: The file is shorter (it changed while it was read).
    """
    buf = np.empty(stop - start, dtype=np.uint8)
    fh.seek(start)
    if fh.readinto(memoryview(buf)) != len(buf):  # type: ignore[arg-type]
        raise ValueError("the file changed while it was read")
    return buf


def _index(tail: np.ndarray) -> list[Member] | None:
    """The members named by the index in the archive comment, found in the file's last bytes and
    checked against the index's CRC-32C; None when the comment holds no index.

    Raises:
        zipfile.BadZipFile: An index whose checksum, or a member place, does not hold.
    """
    data = tail.tobytes()
    at = data.rfind(INDEX_TAG)
    if at < END_RECORD.size:
        return None
    record = END_RECORD.unpack(data[at - END_RECORD.size : at])
    if record[0] != b"PK\x05\x06" or record[-1] != len(data) - at:
        return None
    text, _, stored = data[at:].rpartition(b"#")
    if not stored or int(stored, 16) != crc32c(text):
        raise zipfile.BadZipFile("Bad CRC-32C of the archive's index")
    members = [(str(n), int(s), int(z), int(c)) for n, s, z, c in json.loads(text)["gee_fusion_index"]]
    names = {m[0] for m in members}
    if len(names) < len(members) or any(s < 0 or z < 0 for _, s, z, _ in members):
        raise zipfile.BadZipFile("the archive's index names a member twice, or a negative place")
    return members


def _read_zip(buf: np.ndarray) -> dict[str, np.ndarray]:
    """Every array of the archive in ``buf``, found through its ZIP directory and checked by its
    ZIP CRC-32 (archives without an index, or without the fast CRC-32C)."""
    with zipfile.ZipFile(io.BytesIO(buf.tobytes())) as archive:
        members = archive.infolist()
    view = memoryview(buf)  # type: ignore[arg-type]
    out: dict[str, np.ndarray] = {}
    for info in members:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 1:
            raise ValueError(f"member {info.filename} is compressed or encrypted")
        start = _data_offset(buf, info)
        if start + info.file_size > len(buf):
            raise ValueError(f"member {info.filename} runs past the end of the file")
        if zlib.crc32(view[start : start + info.file_size]) != info.CRC:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
        out[_field(info.filename)] = _array(buf, start, info.file_size)
    return out


def _field(member: str) -> str:
    """The array's name of a member (``B4.npy`` -> ``B4``)."""
    return member[:-4] if member.endswith(".npy") else member


def _data_offset(buf: np.ndarray, info: zipfile.ZipInfo) -> int:
    """Where a member's bytes start (after its local header, name and extra field)."""
    head = buf[info.header_offset : info.header_offset + LOCAL_HEADER.size].tobytes()
    if len(head) != LOCAL_HEADER.size:
        raise ValueError(f"member {info.filename} has no local header")
    fields = LOCAL_HEADER.unpack(head)
    if fields[0] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header of {info.filename!r}")
    return info.header_offset + LOCAL_HEADER.size + fields[9] + fields[10]


def _array(buf: np.ndarray, start: int, size: int) -> np.ndarray:
    """The ``.npy`` array stored in ``buf[start : start + size]``, as a view."""
    if buf[start : start + 6].tobytes() != NPY_MAGIC:
        raise ValueError("not a .npy member")
    major = int(buf[start + 6])
    if major not in (1, 2, 3):
        raise ValueError(f"unknown .npy version {major}")
    width = 2 if major == 1 else 4
    length = int.from_bytes(buf[start + 8 : start + 8 + width].tobytes(), "little")
    body = start + 8 + width
    dtype, shape, fortran = _header(buf[body : body + length].tobytes())
    count = math.prod(shape)
    offset = body + length
    if offset + count * dtype.itemsize != start + size:
        raise ValueError("a .npy member whose size does not match its header")
    flat = buf[offset : offset + count * dtype.itemsize].view(dtype)
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


# -- writing ---------------------------------------------------------------------------------


def write(fh: BinaryIO, arrays: Mapping[str, np.ndarray]) -> None:
    """Store ``arrays`` in the open binary file ``fh`` (from its start) as an uncompressed ``.npz``
    (what ``np.savez(fh, **arrays)`` writes, readable by ``np.load`` and :func:`read`), each array's
    data at an :data:`ALIGN`-byte boundary of the file, indexed in the archive comment.

    The ZIP structures are written here, not by ``zipfile`` (whose per-member work, a seek back to
    each local header included, cost as much as the data): local header, ``.npy`` header and data of
    each member in turn, then the central directory and the end record, dated 1980-01-01.

    Raises:
        ValueError: Object arrays, or an archive of 4 GiB or more (block files are a few MiB).
    """
    index: list[Member] = []
    central: list[bytes] = []
    pos = 0
    for name, value in arrays.items():
        arr = np.asanyarray(value)
        if arr.dtype.hasobject:
            raise ValueError(f"{name}: object arrays are not stored")
        fortran = bool(arr.flags.f_contiguous and not arr.flags.c_contiguous)
        raw = (arr.T if fortran else np.ascontiguousarray(arr)).reshape(-1).view(np.uint8)
        member = f"{name}.npy".encode()
        start = pos + LOCAL_HEADER.size + len(member)
        head = _npy_header(arr.dtype, fortran, arr.shape, start % ALIGN)
        size = len(head) + raw.size
        crc = zlib.crc32(raw.data, zlib.crc32(head)) if raw.size else zlib.crc32(head)
        if start + size >= 2**32 - 1:
            raise ValueError("an archive of 4 GiB or more is not a block file")
        fh.write(LOCAL_HEADER.pack(b"PK\x03\x04", 20, 0, 0, 0, DOS_DATE, crc, size, size, len(member), 0))
        fh.write(member + head)
        if raw.size:
            fh.write(raw.data)
        central.append(CENTRAL_HEADER.pack(b"PK\x01\x02", MADE_BY, 20, 0, 0, 0, DOS_DATE, crc, size, size,
                                           len(member), 0, 0, 0, 0, 0o644 << 16, pos) + member)  # fmt: skip
        if fast_crc32c():
            raw.flags.writeable = False  # of this view only: the caller's array stays writable
            index.append((member.decode(), start, size, crc32c(head, raw)))
        pos = start + size
    directory = b"".join(central)
    comment = _index_comment(index) if index else b""
    fh.write(directory)
    fh.write(
        END_RECORD.pack(b"PK\x05\x06", 0, 0, len(central), len(central), len(directory), pos, len(comment))
    )
    fh.write(comment)


@functools.lru_cache(maxsize=512)
def _npy_header(dtype: np.dtype, fortran: bool, shape: tuple[int, ...], phase: int) -> bytes:
    """The ``.npy`` header of an array (see :func:`_aligned_header`) that starts ``phase`` bytes
    past a multiple of :data:`ALIGN` (block files repeat a few)."""
    header: dict[str, Any] = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": fortran,
        "shape": shape,
    }
    return _aligned_header(header, phase)


def _index_comment(index: list[Member]) -> bytes:
    """The archive comment holding ``index`` (JSON, ``#``, its CRC-32C in hexadecimal); empty when
    it would not fit a ZIP comment."""
    text = INDEX_TAG + json.dumps(index, separators=(",", ":")).encode("ascii") + b"}"
    comment = text + b"#" + f"{crc32c(text):08x}".encode()
    return comment if len(comment) < 2**16 else b""


def _aligned_header(header: dict[str, Any], data_start: int) -> bytes:
    """A version 1.0 ``.npy`` header (what numpy writes, padded with more spaces) that starts at
    ``data_start`` of the file and after which the array's data starts at a multiple of
    :data:`ALIGN` bytes."""
    std = io.BytesIO()
    np.lib.format.write_array_header_1_0(std, header)
    raw = std.getvalue()
    text = raw[10:].rstrip(b" \n")
    pad = -(data_start + 10 + len(text) + 1) % ALIGN
    text += b" " * pad + b"\n"
    return raw[:8] + struct.pack("<H", len(text)) + text
