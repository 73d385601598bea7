"""The kernel that runs user code inside a sandbox: an IPython shell driven over a socket.

This file runs with the sandbox's own Python and imports nothing from codeinterp.
`prepare()` runs once in the zygote (imports, shell creation); `serve(sock)` runs in each
forked session after it is isolated.

Protocol: newline-delimited JSON on one stream socket.
  manager -> kernel: {"type": "execute", "code": "...", "id": "..."}
  kernel -> manager: {"type": "ready"} once, then per execution any number of
    {"type": "stream", "name": "stdout"|"stderr", "text"}
    {"type": "result", "text"}                      (text/plain of a value or display())
    {"type": "display", "png": "<base64>"}
    {"type": "error", "ename", "evalue", "traceback"}
    {"type": "notice", "text"}
  and finally {"type": "done", "id": the execute message's id, "status": "ok"|"error", "truncated": bool}.
Interrupts are SIGINT from the manager. The kernel exits when its socket closes.
"""

import base64
import codecs
import json
import os
import re
import socket
import sys
import threading

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

shell = None


def encode(msg: dict) -> bytes:
    """One protocol line. Text that is not valid Unicode (a lone surrogate) is replaced, so that
    every line the manager gets is valid UTF-8 JSON."""
    return json.dumps(msg, ensure_ascii=False).encode("utf-8", "replace") + b"\n"


class Channel:
    """The socket to the manager, shared by the main thread and the fd forwarders, with the
    per-execution output budget, counted in bytes on the wire (the manager counts the same)."""

    def __init__(self, sock: socket.socket, output_bytes: int):
        self.sock = sock
        self.lock = threading.Lock()
        self.output_bytes = output_bytes
        self.used = 0
        self.truncated = False
        self._pending_notice: bytes | None = None

    def send(self, msg: dict) -> None:
        data = encode(msg)
        with self.lock:
            self.sock.sendall(data)

    def reset(self) -> None:
        with self.lock:
            self.used = 0
            self.truncated = False

    def charge(self, size: int) -> int:
        """Take up to `size` bytes of the budget; returns how many may be sent (0 once truncated)."""
        with self.lock:
            if self.truncated:
                return 0
            allowed = max(min(size, self.output_bytes - self.used), 0)
            self.used += allowed
            if allowed < size:
                self.truncated = True
                self._pending_notice = encode({"type": "notice",
                                               "text": f"[output truncated after {self.output_bytes} bytes]\n"})
            return allowed

    def output(self, msg: dict, text_key: str | None = "text") -> None:
        """Send an output message if the budget allows; cut its text to what is left."""
        data = encode(msg)
        allowed = self.charge(len(data))
        if allowed == len(data):
            with self.lock:
                self.sock.sendall(data)
        elif allowed and text_key is not None:
            text = msg[text_key]
            keep = len(text) * allowed // len(data)
            while keep > 0:
                data = encode(dict(msg, **{text_key: text[:keep]}))
                if len(data) <= allowed:
                    with self.lock:
                        self.sock.sendall(data)
                    break
                keep = keep * allowed // len(data) - 1
        with self.lock:
            notice, self._pending_notice = self._pending_notice, None
            if notice is not None:
                self.sock.sendall(notice)


channel: Channel | None = None


class StreamWriter:
    """sys.stdout / sys.stderr: every write goes straight to the manager."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, name: str, fd: int):
        self.name = name
        self._fd = fd

    def write(self, text) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text and channel is not None:
            channel.output({"type": "stream", "name": self.name, "text": text})
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False


def _forward_fd(read_fd: int, name: str) -> None:
    """Forward what subprocesses and C code write to fd 1/2 as stream output."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character split across reads stays whole
    while True:
        try:
            data = os.read(read_fd, 65536)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        text = decoder.decode(data)
        if channel is not None and text:
            channel.output({"type": "stream", "name": name, "text": text})


def _make_shell():
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class ResultHook(DisplayHook):
        """The value of a cell's last expression becomes a `result` message."""

        def start_displayhook(self):
            pass

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            text = format_dict.get("text/plain")
            png = format_dict.get("image/png")
            if png is not None:
                _send_png(png)
            elif text is not None:
                channel.output({"type": "result", "text": text})

        def finish_displayhook(self):
            pass

    class Publisher(DisplayPublisher):
        """display() and matplotlib figures: PNGs become `display` messages, the rest text."""

        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            if "image/png" in data:
                _send_png(data["image/png"])
            elif "text/plain" in data:
                channel.output({"type": "result", "text": data["text/plain"]})

        def clear_output(self, wait=False):
            pass

    class Shell(InteractiveShell):
        def _showtraceback(self, etype, evalue, stb):
            text = _ANSI.sub("", self.InteractiveTB.stb2text(stb))
            channel.output({"type": "error", "ename": getattr(etype, "__name__", str(etype)),
                            "evalue": str(evalue), "traceback": text + "\n"}, text_key="traceback")

        def enable_gui(self, gui=None):
            pass

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.autocall = 0
    config.InteractiveShell.xmode = "Context"
    config.DisplayFormatter.active_types = ["text/plain", "image/png"]  # all that a session sends
    new_shell = Shell.instance(config=config, displayhook_class=ResultHook,
                               display_pub_class=Publisher)
    new_shell.enable_matplotlib("inline")
    return new_shell


def _send_png(png) -> None:
    if isinstance(png, (bytes, bytearray)):
        encoded = base64.b64encode(png).decode()
    else:
        encoded = str(png)
    channel.output({"type": "display", "png": encoded}, text_key=None)


def prepare() -> None:
    """Import the data stack and build the shell once, before any fork."""
    global shell
    import matplotlib

    matplotlib.use("module://matplotlib_inline.backend_inline")
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    shell = _make_shell()
    _warm_up()


class _Discard:
    """The channel while warming up in the zygote: output goes nowhere."""

    truncated = False

    def output(self, *args, **kwargs) -> None:
        pass

    def send(self, msg: dict) -> None:
        pass


def _warm_up() -> None:
    """Run a value, a figure and an error once, so that every session starts with IPython's and
    matplotlib's lazy machinery already built; then freeze the heap so that the garbage collector
    does not touch (and copy) the zygote's pages in every child."""
    import gc

    _run_unseen("1 + 1", "import matplotlib.pyplot as _plt\n_plt.plot([1, 2])\n_plt.show()", "1 / 0", "del _plt")
    gc.collect()
    gc.freeze()


def _run_unseen(*codes: str) -> None:
    """Run cells whose output goes nowhere and which leave no trace in the user's namespace."""
    global channel
    channel = _Discard()
    for code in codes:
        shell.run_cell(code, store_history=False)
    shell.user_ns.update({"_": "", "__": "", "___": ""})
    channel = None


def _reseed() -> None:
    """Every session is a fork of one parent: the random generators it copied would draw the
    same numbers in every session. Seed them anew from the system's entropy. (The parent's
    str hash seed cannot change in a running interpreter: every session shares it.)"""
    import random
    import tempfile

    import numpy

    random.seed()
    numpy.random.seed()
    tempfile._name_sequence = None  # its generator is made on first use; made again here


def serve(sock: socket.socket, output_bytes: int) -> None:
    """Run executions until the socket closes. Called in the isolated session process."""
    global channel
    # A forked session's first cell copies the parent's pages it writes to: done here, ahead of
    # the user's first cell (a warm session does it before it is handed out).
    _run_unseen("1 + 1")
    _reseed()
    channel = Channel(sock, output_bytes)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, fd)
        os.close(write_fd)
        threading.Thread(target=_forward_fd, args=(read_fd, name), daemon=True).start()
    sys.stdout = StreamWriter("stdout", 1)
    sys.stderr = StreamWriter("stderr", 2)
    reader = sock.makefile("rb")
    channel.send({"type": "ready"})
    while True:
        try:
            line = reader.readline()
        except KeyboardInterrupt:
            continue  # an interrupt that came after the cell ended
        if not line:
            os._exit(0)
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("type") == "execute":
            _execute(str(msg.get("code", "")), msg.get("id"))


def _execute(code: str, execution_id=None) -> None:
    channel.reset()
    status = "ok"
    try:
        result = shell.run_cell(code, store_history=True)
        if not result.success:
            status = "error"
    except KeyboardInterrupt:
        channel.output({"type": "error", "ename": "KeyboardInterrupt", "evalue": "",
                        "traceback": "KeyboardInterrupt\n"}, text_key="traceback")
        status = "error"
    except BaseException as exc:  # noqa: BLE001 - report whatever escaped IPython
        channel.output({"type": "error", "ename": type(exc).__name__, "evalue": str(exc),
                        "traceback": f"{type(exc).__name__}: {exc}\n"}, text_key="traceback")
        status = "error"
    while True:
        try:
            channel.send({"type": "done", "id": execution_id, "status": status, "truncated": channel.truncated})
            return
        except KeyboardInterrupt:
            continue
