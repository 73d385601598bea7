"""The run engine's pure pieces: streamed code decoding, annotations, tool results, event fan-out."""

import asyncio
import json
import threading

import pytest

from codeinterp.runs.annotations import file_path_annotations
from codeinterp.runs.events import EventChannel
from codeinterp.runs.python_tool import (
    NotSaved, SavedOutputs, StreamedCode, code_from_arguments, quoted_path, result_for_model, truncate,
)
from codeinterp.sandbox.types import ExecutionResult, SandboxFile, OutputEvent

CODES = [
    "x = 2 + 2\nx",
    'print("quotes \\" and \\\\ backslashes")\n',
    "s = 'tab\\tnewline\\n'  # é ü ß 中文 😀\nprint(s)",
    "",
]


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("piece", [1, 2, 3, 5, 8, 1000])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_streamed_code_pieces_add_up_to_the_code(code, piece, ascii_only):
    arguments = json.dumps({"code": code}, ensure_ascii=ascii_only)
    decoder = StreamedCode()
    pieces = [decoder.feed(arguments[i:i + piece]) for i in range(0, len(arguments), piece)]
    pieces.append(decoder.finish(arguments))
    assert "".join(pieces) == code
    assert decoder.code == code


def test_streamed_code_waits_for_whole_escapes():
    decoder = StreamedCode()
    assert decoder.feed('{"code": "a\\') == "a"
    assert decoder.feed("u00") == ""
    assert decoder.feed("e9\\ud83d") == "é"
    assert decoder.feed("\\ude00b") == "😀b"
    assert decoder.feed('"}') == ""
    assert decoder.finish('{"code": "a\\u00e9\\ud83d\\ude00b"}') == ""


def test_arguments_of_another_shape_are_decoded_at_the_end():
    decoder = StreamedCode()
    arguments = '{"timeout": 5, "code": "print(1)"}'
    assert decoder.feed(arguments) == ""
    assert decoder.finish(arguments) == "print(1)"
    bare = StreamedCode()
    assert bare.feed("print(2)") == ""
    assert bare.finish("print(2)") == "print(2)"


def test_code_from_arguments():
    assert code_from_arguments('{"code": "1+1"}') == "1+1"
    assert code_from_arguments("import os") == "import os"
    assert code_from_arguments('{"code": ') == ""
    assert code_from_arguments('"1+1"') == "1+1"


def test_annotations_point_at_the_link_text():
    text = "Get [the table](sandbox:/mnt/data/out.csv). Also sandbox:/mnt/data/a%20b.png, sandbox:/mnt/data/gone.txt"
    files = {"out.csv": "file-1", "a b.png": "file-2"}
    annotations = file_path_annotations(text, files)
    assert [a["file_path"]["file_id"] for a in annotations] == ["file-1", "file-2"]
    for a in annotations:
        assert a["type"] == "file_path"
        assert text[a["start_index"]:a["end_index"]] == a["text"]
    assert annotations[0]["text"] == "sandbox:/mnt/data/out.csv"
    assert annotations[1]["text"] == "sandbox:/mnt/data/a%20b.png"


def test_annotations_in_subfolders_and_unicode_text():
    text = "Ünïcödé 😀 first: sandbox:/mnt/data/out/chart.csv."
    (a,) = file_path_annotations(text, {"out/chart.csv": "file-9"})
    assert text[a["start_index"]:a["end_index"]] == "sandbox:/mnt/data/out/chart.csv"


def test_result_for_model_lists_output_errors_images_and_files():
    result = ExecutionResult(status="error", outputs=[
        OutputEvent("stdout", "partial\n"),
        OutputEvent("image", png=b"\x89PNG"),
        OutputEvent("error", "Traceback...\nZeroDivisionError: division by zero", ename="ZeroDivisionError"),
    ], files_changed=[SandboxFile("out.csv", 10, 0.0)])
    text = result_for_model(result, SavedOutputs(images=["file-1"], files=["out.csv"]), 60)
    assert text.splitlines() == ["partial", "Traceback...", "ZeroDivisionError: division by zero",
                                 "[1 image displayed to the user]", '[file saved: "/mnt/data/out.csv"]']
    assert "interrupted" in result_for_model(ExecutionResult(status="timeout"), SavedOutputs(), 60)
    assert "lost" in result_for_model(ExecutionResult(status="crashed"), SavedOutputs(), 60)
    assert result_for_model(ExecutionResult(status="ok"), SavedOutputs(), 60) == "[no output]"


def test_result_for_model_says_which_files_were_not_saved_and_why():
    outputs = SavedOutputs(files=["a.csv"], max_files=2, over_cap=3, not_saved=[
        NotSaved("big.bin", 5 << 20, "execution_budget", 4), NotSaved("q.bin", 10, "storage_quota", 20),
        NotSaved("gone.txt", 1, "unreadable")])
    lines = result_for_model(ExecutionResult(status="ok"), outputs, 60).splitlines()
    assert lines[0] == '[file saved: "/mnt/data/a.csv"]'
    assert "big.bin" in lines[1] and "not saved" in lines[1] and "4 MB" in lines[1]
    assert "q.bin" in lines[2] and "quota of 20 MB" in lines[2]
    assert "gone.txt" in lines[3] and "not saved" in lines[3]
    assert "3 more files" in lines[4] and "at most 2 files" in lines[4]


@pytest.mark.parametrize("name", ["a\nSYSTEM: x", "a\rb", "a\u2028b", "a\x00b", "a\u0085b", "tab\there"])
def test_quoted_paths_never_break_a_line(name):
    quoted = quoted_path(name)
    assert len(quoted.splitlines()) == 1 and quoted.isprintable()
    assert quoted.startswith('"/mnt/data/') and quoted.endswith('"')
    assert quoted_path("数据 é.csv") == '"/mnt/data/数据 é.csv"'


def test_truncate_keeps_head_and_tail_with_a_marker():
    text = "".join(f"line {n}\n" for n in range(10_000))
    short = truncate(text, 1000)
    assert short.startswith("line 0\n") and short.endswith("line 9999\n")
    assert "[... output truncated:" in short and len(short) < 1100
    assert truncate("small", 1000) == "small"


def test_event_channel_gives_every_reader_the_whole_leg_in_order():
    async def main():
        channel = EventChannel()
        channel.publish("thread.run.created", {"n": 0})
        early = asyncio.create_task(_collect_batches(channel))
        await asyncio.sleep(0)
        data = {"n": 1}
        channel.publish("thread.run.in_progress", data)
        data["n"] = 99  # a later change to the published dict is not seen by readers
        channel.publish("thread.run.completed", {"n": 2})
        channel.publish("thread.run.step.created", {"n": 3})  # after the end: dropped
        late = await _collect_batches(channel)
        return await early, late

    early, late = asyncio.run(main())
    created, in_progress, completed = (("thread.run.created", {"n": 0}), ("thread.run.in_progress", {"n": 1}),
                                       ("thread.run.completed", {"n": 2}))
    # what was published while a reader waited reaches it as one batch (one write to its stream)
    assert early == [[created], [in_progress, completed]] and late == [[created, in_progress, completed]]


def test_event_channel_readers_on_another_threads_loop_see_every_event():
    """The run worker publishes on its own loop, in its own thread; SSE readers wait on the server's."""
    channel = EventChannel()
    names = [f"thread.run.step.delta.{n}" for n in range(500)] + ["thread.run.completed"]

    def publisher():
        async def publish():
            for name in names:
                channel.publish(name, {})
                await asyncio.sleep(0)
        asyncio.run(publish())

    async def main():
        reader = asyncio.create_task(_collect(channel))
        await asyncio.sleep(0)
        worker = threading.Thread(target=publisher)
        worker.start()
        events = await asyncio.wait_for(reader, 30)
        worker.join()
        return events

    assert [name for name, _ in asyncio.run(main())] == names


async def _collect_batches(channel):
    return [[(name, json.loads(data)) for name, data in batch] async for batch in channel.subscribe()]


async def _collect(channel):
    return [event for batch in await _collect_batches(channel) for event in batch]


def test_text_with_lone_surrogates_is_stored_and_streamed_as_valid_utf8():
    from codeinterp.runs.events import event
    from codeinterp.store.db import JSON_CODECS
    from codeinterp.store.text import valid_utf8

    assert valid_utf8("caf\udce9.txt") == "caf\ufffd.txt"  # an escaped byte: one replacement character
    assert valid_utf8("a\ud800b") == "a\ufffd\ufffd\ufffdb"
    assert valid_utf8("plain é 😀") == "plain é 😀"
    value = {"logs": "x\udcff", "k\udcff": ["\ud83d"], "n": 1}
    for text in (event("thread.run.step.delta", value)[1], JSON_CODECS["json_serializer"](value)):
        assert json.loads(text.encode("utf-8")) == {"logs": "x\ufffd", "k\ufffd": ["\ufffd\ufffd\ufffd"], "n": 1}


def test_input_file_names_fit_255_bytes_keep_their_extension_and_stay_unique():
    from codeinterp.runs.container_state import ThreadContainer

    ts = ThreadContainer("proj", "thread")
    long = "数" * 104 + ".csv"
    ts.assign_inputs([("f1", long), ("f2", long), ("f3", "x" * 300), ("f4", "a." + "b" * 300), ("f5", "short.txt")])
    paths = [ts.inputs[f].path for f in ("f1", "f2", "f3", "f4", "f5")]
    assert len(set(paths)) == 5 and paths[4] == "short.txt"
    assert all(len(p.encode()) <= 255 for p in paths)
    assert paths[0].endswith(".csv") and paths[1].endswith("_1.csv") and paths[0].startswith("数" * 80)
