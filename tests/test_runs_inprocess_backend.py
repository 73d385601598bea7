"""Runs through the real server with a second sandbox backend, defined in the test suite
(tests/helpers/inprocess_backend.py) and chosen by configuration alone: nothing in runs/ or api/
knows it. Code uses paths relative to /mnt/data, its working directory in every backend."""

import io
import os
from pathlib import Path

import pytest

from tests.test_runs import ask, last_message, logs_of, make_assistant, python

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def server_env() -> dict:
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    return {"CODEINTERP_SANDBOX_BACKEND": "tests.helpers.inprocess_backend:InProcessBackend", "PYTHONPATH": path}


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def test_code_runs_in_the_configured_backend(client, upstream, server):
    upstream.script([python("import os\nprint(os.getcwd())\n2 + 2"), {"text": "The answer is 4."}])
    thread, run = ask(client, make_assistant(client), "What is 2 + 2?")
    assert run.status == "completed", run.last_error
    cwd, value = logs_of(client, run).split()
    assert cwd.startswith(str(server.data_dir / "inprocess-sessions")) and value == "4"
    assert last_message(client, thread).content[0].text.value == "The answer is 4."


def test_state_persists_across_runs_of_a_thread(client, upstream):
    assistant = make_assistant(client)
    upstream.script([python("kept = 'across runs'"), {"text": "stored"}])
    thread, first = ask(client, assistant, "Keep it.")
    upstream.script([python("print(kept)"), {"text": "read"}])
    _, second = ask(client, assistant, "Read it.", thread=thread)
    assert first.status == second.status == "completed"
    assert logs_of(client, second) == "across runs\n"


def test_input_files_go_in_and_generated_files_come_out(client, upstream):
    data = client.files.create(file=("data.csv", io.BytesIO(b"n\n1\n2\n3\n")), purpose="assistants")
    assistant = make_assistant(client, tool_resources={"code_interpreter": {"file_ids": [data.id]}})
    text = "Saved [the squares](sandbox:/mnt/data/squares.csv)."
    upstream.script([
        python("import pandas as pd\ndf = pd.read_csv('data.csv')\ndf.assign(sq=df.n ** 2).to_csv('squares.csv', "
               "index=False)\nprint(df.n.sum())"),
        {"text": text},
    ])
    thread, run = ask(client, assistant, "Square them.")
    assert run.status == "completed", run.last_error
    assert logs_of(client, run) == "6\n"
    (annotation,) = last_message(client, thread).content[0].text.annotations
    assert annotation.text == "sandbox:/mnt/data/squares.csv"
    assert client.files.content(annotation.file_path.file_id).read() == b"n,sq\n1,1\n2,4\n3,9\n"


def test_a_chart_becomes_an_image_file_block(client, upstream):
    upstream.script([python("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"),
                     {"text": "Here it is."}])
    thread, run = ask(client, make_assistant(client), "Plot it.")
    assert run.status == "completed", run.last_error
    message = last_message(client, thread)
    assert [block.type for block in message.content] == ["image_file", "text"]
    png = client.files.content(message.content[0].image_file.file_id).read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
