"""Streaming multipart/form-data parsing: file parts go straight into a blob, never into memory."""

from dataclasses import dataclass, field

from fastapi import Request
from starlette.requests import ClientDisconnect
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from codeinterp.api.errors import APIError
from codeinterp.store.blobs import BlobStore, BlobWriter

MAX_FIELD_BYTES = 64 * 1024


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    file_field: str | None = None
    filename: str | None = None
    blob: BlobWriter | None = None
    too_large: bool = False
    over_room: bool = False  # the file passed `room` (the project's storage left): not kept

    pending: bytearray = field(default_factory=bytearray)  # file bytes parsed, not yet written

    async def flush(self) -> None:
        if self.blob is not None and self.pending:
            await self.blob.write(bytes(self.pending))
        self.pending.clear()

    async def discard(self) -> None:
        self.pending.clear()
        if self.blob is not None:
            blob, self.blob = self.blob, None
            await blob.discard()


def too_large_error(max_bytes: int) -> APIError:
    return APIError(413, f"File is too large: the maximum size is {max_bytes} bytes.", param="file",
                    code="file_too_large")


class Body:
    """The request body as chunks, read from `receive` so that the rest can be drained after an error."""

    def __init__(self, request: Request) -> None:
        self.receive = request.receive
        self.done = False

    async def chunks(self):
        while not self.done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self.done = not message.get("more_body", False)
            yield message.get("body", b"")

    async def drain(self) -> None:
        """Read and drop the rest, so the client can read our error reply."""
        async for _ in self.chunks():
            pass


async def parse_upload(request: Request, store: BlobStore, file_field: str, max_bytes: int,
                       room: int | None = None) -> Upload:
    """Parse the body; the part named `file_field` (with a filename) is written to a temporary blob.

    The parser's callbacks gather the file's bytes; they are written after each chunk of the body,
    so at most a chunk waits in memory. On error the temporary blob is removed and an APIError is
    raised; on success the caller owns
    `upload.blob` (commit or discard it). A file larger than `room` stops being written as soon as it
    passes it: the blob is removed and `upload.over_room` is set.
    """
    body = Body(request)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        await body.drain()
        raise APIError(400, "The request must be multipart/form-data with a 'file' and a 'purpose'.")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + MAX_FIELD_BYTES:
        await body.drain()
        raise too_large_error(max_bytes)
    upload = Upload()
    if room is not None and length and length.isdigit() and int(length) > room + MAX_FIELD_BYTES:
        await body.drain()
        upload.over_room = True
        return upload

    part: dict = {}
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        part.clear()
        part.update(headers={}, name=None, filename=None, value=bytearray(), is_file=False)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part["headers"][bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        part["name"] = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if (part["name"] == file_field and filename is not None and upload.blob is None and not upload.too_large
                and not upload.over_room):
            part["is_file"] = True
            upload.file_field = part["name"]
            upload.filename = filename.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1]
            upload.blob = store.open_writer()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.get("is_file"):
            if upload.too_large or upload.over_room:
                return
            upload.pending.extend(data[start:end])
            written = upload.blob.size + len(upload.pending)
            if written > max_bytes:
                upload.too_large = True
            elif room is not None and written > room:
                upload.over_room = True
        elif len(part["value"]) + (end - start) <= MAX_FIELD_BYTES:
            part["value"].extend(data[start:end])
        else:
            raise APIError(400, f"The form field '{part['name']}' is too long.", param=part["name"])

    def on_part_end() -> None:
        if not part.get("is_file") and part.get("name"):
            upload.fields[part["name"]] = part["value"].decode("utf-8", "replace")

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        async for chunk in body.chunks():
            parser.write(chunk)
            if upload.too_large or upload.over_room:
                await upload.discard()
            else:
                await upload.flush()
        parser.finalize()
        await upload.flush()
    except MultipartParseError as exc:
        await upload.discard()
        await body.drain()
        raise APIError(400, f"The multipart body could not be parsed: {exc}") from None
    except APIError:
        await upload.discard()
        await body.drain()
        raise
    except BaseException:
        await upload.discard()
        raise
    if upload.too_large:
        raise too_large_error(max_bytes)
    return upload
