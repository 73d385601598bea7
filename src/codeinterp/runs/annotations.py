"""`sandbox:/mnt/data/NAME` links in the model's text, found once and rendered per API: a
`file_path` annotation (Assistants) or a `container_file_citation` (Responses)."""

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote

SANDBOX_LINK = re.compile(r"sandbox:/mnt/data/[^\s()\[\]<>\"'`]+")
TRAILING_PUNCTUATION = ".,;:!?"


@dataclass
class FileLink:
    """A link to a known file: `text[start:end]` is the link."""

    start: int
    end: int
    link: str
    path: str  # relative to /mnt/data
    file_id: str


def file_links(text: str, files: dict[str, str]) -> list[FileLink]:
    """The links of `text` whose file is known. `files` maps a path relative to /mnt/data
    ("out/chart.csv") to a file id. Offsets are character offsets into `text`."""
    found = []
    for match in SANDBOX_LINK.finditer(text):
        link = match.group(0).rstrip(TRAILING_PUNCTUATION)
        path = unquote(link[len("sandbox:/mnt/data/"):])
        file_id = files.get(path)
        if file_id is not None:
            found.append(FileLink(match.start(), match.start() + len(link), link, path, file_id))
    return found


def file_path_annotations(text: str, files: dict[str, str]) -> list[dict]:
    """Assistants: a `file_path` annotation per link whose file is known."""
    return [{"type": "file_path", "text": f.link, "start_index": f.start, "end_index": f.end,
             "file_path": {"file_id": f.file_id}} for f in file_links(text, files)]


def container_file_citations(text: str, files: dict[str, str], container_id: str) -> list[dict]:
    """Responses: a `container_file_citation` per link to a file of the container, spanning the link."""
    return [container_file_citation(container_id, f.file_id, f.path, f.start, f.end)
            for f in file_links(text, files)]


def container_file_citation(container_id: str, file_id: str, path: str, start: int = 0, end: int = 0) -> dict:
    return {"type": "container_file_citation", "container_id": container_id, "file_id": file_id,
            "filename": posixpath.basename(path), "start_index": start, "end_index": end}
