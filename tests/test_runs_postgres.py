"""The run engine on PostgreSQL: the runs, streaming, thread and message tests of the SQLite
modules, collected here a second time with this module's server on a fresh PostgreSQL database
(cancel, streaming, thread update, message delete, the `run_id` filter, refusing changes while a
run is active, cascade delete, another project's key). Expiry and crashes take a server of their
own: those tests are parametrized over both databases where they are (`database_env`)."""

import pytest

from tests.helpers.postgres import server_on_postgres
# Imported tests are collected again in this module, with its `server` fixture.
from tests.test_runs import (  # noqa: F401
    fresh_script, test_cancel_interrupts_a_long_cell, test_create_and_poll_one_cell_gives_last_expression_logs,
    test_deleting_a_thread_deletes_its_runs_and_steps_and_ends_its_session,
    test_earlier_runs_in_the_prompt_are_the_same_when_kept_and_leave_out_deleted_messages,
    test_function_tool_requires_action_then_submit, test_state_persists_across_two_runs_of_a_thread,
    test_upstream_error_fails_the_run,
)
from tests.test_runs_cross_project import test_another_projects_key_reaches_no_run_route  # noqa: F401
from tests.test_runs_ending import test_cancelled_run_events, test_incomplete_run_ends_its_message_and_itself_incomplete  # noqa: F401
from tests.test_runs_streaming import (  # noqa: F401
    assistant, test_stream_ends_with_done_and_failed_run, test_stream_with_event_handler_in_order,
    test_submit_tool_outputs_stream,
)
from tests.test_threads_messages import (  # noqa: F401
    test_deleting_a_thread_deletes_its_messages, test_messages_create_list_retrieve_modify_delete,
    test_no_new_messages_or_deletion_while_a_run_is_active, test_run_id_filter_lists_the_runs_messages,
    test_thread_without_body_and_its_modifications, upload,
)

pytestmark = [pytest.mark.postgres, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream):
    with server_on_postgres(tmp_path_factory.mktemp("server"),
                            env={"CODEINTERP_MODEL_BASE_URL": upstream.base_url}) as proc:
        yield proc
