"""The chat planner against a small local server that speaks the OpenAI chat-completions protocol."""

import pytest
from chatserver import chat_app
from instrsets import DEV

from academy.command.chat import ChatPlanner, write_chat_planner
from academy.command.exam import examine
from academy.command.planner import PlannerError, load_planner
from academy.deploy.server import ServerThread, free_port


@pytest.fixture(scope="module")
def server(planner):
    app = chat_app(planner)
    with ServerThread(app) as srv:
        srv.app, srv.planner = app, planner
        yield srv


def _chat(server, tmp_path, model):
    folder = write_chat_planner(tmp_path / model, f"{server.url}/v1", model)
    return load_planner(folder)


def test_the_chat_planner_plans_over_http_with_the_schema_in_the_request(server, tmp_path):
    chat = _chat(server, tmp_path, "academy-offline")
    assert isinstance(chat, ChatPlanner)
    plan = chat.plan("put the red cells in their bin, then seat the part")
    assert [(s.skill, s.args) for s in plan.steps] == [
        ("sort_cells", {"colours": ["red"], "count": None}), ("place_part", {"hand": "right"})]
    body = server.app.state.requests[-1]
    assert body["response_format"]["type"] == "json_schema" and body["temperature"] == 0
    assert body["messages"][0]["role"] == "system" and "sort_cells" in body["messages"][0]["content"]
    assert chat.plan("open the door").refused.kind == "unknown"
    # the same exam as the offline planner, through the protocol
    got, offline = examine(chat, DEV), examine(server.planner, DEV)
    assert got["n"] == offline["n"] and got["accuracy"] == offline["accuracy"]
    assert [w["text"] for w in got["wrong"]] == [w["text"] for w in offline["wrong"]]


def test_answers_outside_the_schema_or_the_library_are_not_guessed_at(server, tmp_path):
    with pytest.raises(PlannerError, match="did not answer a JSON plan"):
        _chat(server, tmp_path, "prose").plan("sort the cells")
    with pytest.raises(PlannerError, match="breaks the schema"):
        _chat(server, tmp_path, "off-schema").plan("sort the red cells")
    # well formed, but not a step the robot can do: the library refuses it
    plan = _chat(server, tmp_path, "left-to-right").plan("hand the part over")
    assert plan.refused.kind == "impossible" and "right hand to the left only" in plan.refused.reason


def test_an_endpoint_that_is_not_there_is_named(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    chat = load_planner(write_chat_planner(tmp_path / "c", url, "m", timeout_s=2))
    with pytest.raises(PlannerError, match=f"cannot reach the chat endpoint {url}/chat/completions"):
        chat.plan("sort the cells")
