"""A small local server that speaks the OpenAI chat-completions protocol, for the chat planner's tests.

Its "model" is Academy's offline planner, answering in the JSON schema the request carries, so the
chat planner is tested end to end over HTTP. Other model names misbehave on purpose: ``prose``
answers words instead of JSON, ``off-schema`` answers JSON outside the schema, ``left-to-right``
plans a handover the library cannot do. Every request is kept for the tests to read.
"""

from __future__ import annotations

import json
import time

import jsonschema
from fastapi import FastAPI, HTTPException


def chat_app(planner) -> FastAPI:
    app = FastAPI()
    app.state.requests = []

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": m, "object": "model"} for m in
                                           ("academy-offline", "prose", "off-schema", "left-to-right")]}

    @app.post("/v1/chat/completions")
    def complete(body: dict):
        app.state.requests.append(body)
        fmt = body.get("response_format") or {}
        if fmt.get("type") != "json_schema":
            raise HTTPException(400, "this server only answers with response_format json_schema")
        schema = fmt["json_schema"]["schema"]
        jsonschema.Draft202012Validator.check_schema(schema)
        text = next(m["content"] for m in body["messages"] if m["role"] == "user")
        model = body["model"]
        if model == "prose":
            content = "Sure! First I will sort the cells, then seat the part."
        elif model == "off-schema":
            content = json.dumps({"steps": [{"skill": "sort_cells", "args": {"colour": "red"}}], "refuse": None,
                                  "reason": ""})
        elif model == "left-to-right":
            content = json.dumps({"steps": [{"skill": "handover", "args": {"from_hand": "left", "to_hand": "right"}}],
                                  "refuse": None, "reason": ""})
        else:
            plan = planner.plan(text).to_dict()
            content = json.dumps({"steps": plan.get("plan", []), "refuse": plan.get("refuse"),
                                  "reason": plan.get("reason", "")})
            jsonschema.validate(json.loads(content), schema)  # what a constrained decoder guarantees
        return {"id": f"chatcmpl-{len(app.state.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    return app
