"""An upload that arrives slowly, for tests that kill the server in the middle of one."""

import threading
import time

import httpx


def start_slow_upload(server, chunks: int, timeout: float) -> tuple[threading.Thread, threading.Event]:
    """POST /v1/files with `chunks` pieces of 50 kB, one every 50 ms, from a thread; the event is
    set once a million bytes are sent. The server may die under it."""
    sent = threading.Event()

    def slow_body():
        yield (b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
               b'--B\r\nContent-Disposition: form-data; name="file"; filename="half.csv"\r\n\r\n')
        for n in range(chunks):
            yield b"h" * 50_000
            if n == 20:
                sent.set()
            time.sleep(0.05)
        yield b"\r\n--B--\r\n"

    def post():
        try:
            httpx.post(server.base_url + "/files", content=slow_body(), timeout=timeout,
                       headers={"Authorization": f"Bearer {server.api_key}",
                                "Content-Type": "multipart/form-data; boundary=B"})
        except httpx.HTTPError:
            pass  # the server dies under it

    uploader = threading.Thread(target=post)
    uploader.start()
    return uploader, sent
