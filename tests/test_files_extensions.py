"""CODEINTERP_UPLOAD_EXTENSIONS widens the extensions accepted for purpose "assistants" (OpenAI's
list stays the default; tests/test_files.py shows it), and what it accepts the sandbox opens."""

import io
import subprocess

import openai
import pytest

from codeinterp.config import Settings
from tests.test_runs import ask, logs_of, make_assistant, python

server_env = {"CODEINTERP_UPLOAD_EXTENSIONS": "parquet, .TSV,sqlite"}
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def upload(client, name: str, content: bytes):
    return client.files.create(file=(name, io.BytesIO(content)), purpose="assistants")


def test_listed_extensions_are_accepted_and_others_still_refused(client):
    assert upload(client, "table.tsv", b"a\tb\n1\t2\n").filename == "table.tsv"
    assert upload(client, "Cities.SQLite", b"").filename == "Cities.SQLite"
    with pytest.raises(openai.BadRequestError) as refused:
        upload(client, "model.bin", b"\0")
    assert "Invalid extension bin" in refused.value.message and "'parquet'" in refused.value.message


def test_an_accepted_parquet_file_opens_in_the_sandbox(client, upstream):
    # Written by the sandbox's environment, which has pyarrow (the server's need not).
    write = "import sys, pandas; pandas.DataFrame({'n': [1, 2, 3]}).to_parquet(sys.stdout.buffer)"
    data = subprocess.run([str(Settings().sandbox_env / "bin" / "python"), "-c", write], capture_output=True,
                          check=True).stdout
    parquet = upload(client, "numbers.parquet", data)
    upstream.reset()
    upstream.script([python("import pandas as pd\nint(pd.read_parquet('/mnt/data/numbers.parquet')['n'].sum())"),
                     {"text": "The numbers add up to 6."}])
    assistant = make_assistant(client, tool_resources={"code_interpreter": {"file_ids": [parquet.id]}})
    _, run = ask(client, assistant, "Add the numbers.")
    assert run.status == "completed", run.last_error
    assert logs_of(client, run) == "6\n"
