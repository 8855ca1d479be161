"""Files out of a container through Docker's archive API (``docker cp``).

The archive API answers over an ordinary HTTP response whose end is part of the protocol
(a tar stream inside chunked encoding), unlike a one-off ``docker exec``, whose output can
be lost altogether when the command is short-lived (moby/moby#27289; seen here as an empty
stream with exit status 0 under load). Large outputs we must trust are therefore written to
a file in the container and read back from here. The archive API cannot see tmpfs mounts.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from codemonkeys.sandbox.base import SandboxError
from codemonkeys.sandbox.common import SandboxFileNotFound

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from docker.models.containers import Container

CHUNK = 1 << 20


class _ChunkFile(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (what tarfile's stream mode reads)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._it = iter(chunks)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._left:
            nxt = next(self._it, None)
            if nxt is None:
                return 0
            self._left = nxt
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._left))
        view[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def archive_file_chunks(container: Container, path: str) -> Iterator[bytes]:
    """The content of the regular file ``path`` in ``container``, in chunks. Raises
    ``SandboxFileNotFound`` when it does not exist and ``SandboxError`` when it is not a
    regular file or arrives shorter than the engine said."""
    import docker

    try:
        stream, stat = container.get_archive(path, chunk_size=CHUNK)
    except docker.errors.NotFound as e:
        raise SandboxFileNotFound(f"{path} does not exist in the sandbox") from e
    except Exception as e:
        raise SandboxError(f"cannot read {path}: {e}") from e
    with tarfile.open(fileobj=io.BufferedReader(_ChunkFile(stream)), mode="r|") as tar:
        member = tar.next()
        if member is None or not member.isfile():
            raise SandboxError(f"{path} is not a regular file")
        f = tar.extractfile(member)
        assert f is not None, "a regular member always has a file object"
        got = 0
        while chunk := f.read(CHUNK):
            got += len(chunk)
            yield chunk
    size = (stat or {}).get("size")
    if size is not None and got != size:
        raise SandboxError(f"{path}: {got} of {size} bytes arrived from the sandbox")


def read_archive_file(container: Container, path: str) -> bytes:
    """The whole content of the regular file ``path`` in ``container``."""
    return b"".join(archive_file_chunks(container, path))
