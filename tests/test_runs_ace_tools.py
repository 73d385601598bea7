"""Code written for OpenAI's sandbox calls `ace_tools`: through a run (scripted model, real
server and sandbox, the official SDK), a dataframe it shows is a logs output and a CSV the user
downloads, and a chart it shows is an image."""

import pytest

from tests.test_runs import ask, last_message, make_assistant, python, steps_of

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CODE = """
import pandas as pd
import matplotlib.pyplot as plt
import ace_tools
df = pd.DataFrame({'city': ['Paris', 'Lyon'], 'people': [2100000, 520000]})
ace_tools.display_dataframe_to_user(name='City sizes', dataframe=df)
plt.bar(df['city'], df['people'])
ace_tools.display_matplotlib_image_to_user('City sizes')
"""


@pytest.fixture(autouse=True)
def fresh_script(upstream):
    upstream.reset()


def test_ace_tools_dataframe_and_chart_become_outputs_and_files(client, upstream):
    text = "Here is the [table](sandbox:/mnt/data/City_sizes.csv)."
    upstream.script([python(CODE), {"text": text}])
    thread, run = ask(client, make_assistant(client), "Show me the cities.")
    assert run.status == "completed", run.last_error

    outputs = steps_of(client, run)[0].step_details.tool_calls[0].code_interpreter.outputs
    logs = "".join(o.logs for o in outputs if o.type == "logs")
    assert "City sizes: 2 rows x 2 columns, saved to /mnt/data/City_sizes.csv" in logs
    assert "Paris" in logs and "520000" in logs
    assert len([o for o in outputs if o.type == "image"]) == 1  # shown once, not again at the cell's end
    assert '[file saved: "/mnt/data/City_sizes.csv"]' in upstream.requests[-1]["messages"][-1]["content"]

    message = last_message(client, thread)
    assert [b.type for b in message.content] == ["image_file", "text"]
    (annotation,) = message.content[1].text.annotations
    csv = client.files.content(annotation.file_path.file_id).read()
    assert csv == b"city,people\nParis,2100000\nLyon,520000\n"
