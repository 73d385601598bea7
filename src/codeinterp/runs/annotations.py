"""`sandbox:/mnt/data/NAME` links in the model's text -> `file_path` annotations."""

import re
from urllib.parse import unquote

SANDBOX_LINK = re.compile(r"sandbox:/mnt/data/[^\s()\[\]<>\"'`]+")
TRAILING_PUNCTUATION = ".,;:!?"


def file_path_annotations(text: str, files: dict[str, str]) -> list[dict]:
    """Annotations for each link whose file is known.

    `files` maps a path relative to /mnt/data ("out/chart.csv") to a file id. Indices are
    character offsets into `text`; `text[start_index:end_index]` is the annotation's `text`.
    """
    annotations = []
    for match in SANDBOX_LINK.finditer(text):
        link = match.group(0).rstrip(TRAILING_PUNCTUATION)
        path = unquote(link[len("sandbox:/mnt/data/"):])
        file_id = files.get(path)
        if file_id is None:
            continue
        start = match.start()
        annotations.append({
            "type": "file_path",
            "text": link,
            "start_index": start,
            "end_index": start + len(link),
            "file_path": {"file_id": file_id},
        })
    return annotations
