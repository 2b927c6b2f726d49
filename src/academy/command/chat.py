"""A planner that asks an OpenAI-compatible chat endpoint (a local Ollama or vLLM server).

Chosen by a planner folder whose ``planner.json`` has ``"kind": "chat"``:

    {"format": "academy-planner/1", "kind": "chat", "version": "1.0.0",
     "endpoint": "http://127.0.0.1:11434/v1", "model": "llama3.1:8b",
     "api_key_env": "OPENAI_API_KEY", "timeout_s": 30}

The request is ``POST {endpoint}/chat/completions`` with the skill library in the system message
and ``response_format`` set to a JSON schema (``skills.plan_schema``), which vLLM and Ollama use to
constrain decoding. The answer is checked against that schema and then, step by step, against the
skill library (``check_step``), so a model cannot hand the robot a step it has no skill for: a step
the library cannot do becomes a refusal with the library's reason. An endpoint that cannot be
reached, or that answers outside the schema, is a ``PlannerError`` naming the endpoint and what was
wrong; the planner does not guess.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import jsonschema

from academy.command.planner import FORMAT, PlannerError, read_spec
from academy.command.skills import LIBRARY, Plan, PlanError, Refusal, check_step, library_dict, plan_from_steps, plan_schema

SYSTEM = """You turn a person's instruction to a humanoid workcell robot into a plan of skills.
The robot has exactly these skills (name, what it does, arguments):
{library}
Answer with JSON only, following the schema you are given:
- "steps": the skills in the order they are to be done, each with its arguments;
- "refuse": null when every part of the instruction is a skill above; "unknown" when some part asks for
  something no skill does; "impossible" when a skill fits but not with what was asked (a colour of cell
  that does not exist, the other hand, more than 10 cells, the part into a bin, cells onto the tray);
- "reason": one sentence, empty when not refused.
Refuse rather than guess. Never invent a skill or an argument."""


def chat_spec(endpoint: str, model: str, version: str = "1.0.0", api_key_env: str | None = "OPENAI_API_KEY",
              timeout_s: float = 30.0) -> dict:
    return {"format": FORMAT, "kind": "chat", "version": version, "endpoint": endpoint.rstrip("/"), "model": model,
            "api_key_env": api_key_env, "timeout_s": timeout_s, "skills": list(LIBRARY)}


def write_chat_planner(out: str | Path, endpoint: str, model: str, **kw) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "planner.json").write_text(json.dumps(chat_spec(endpoint, model, **kw), indent=1))
    return out


class ChatPlanner:
    def __init__(self, folder: str | Path | None = None, spec: dict | None = None, client: httpx.Client | None = None):
        self.spec = spec or read_spec(folder)
        for key in ("endpoint", "model"):
            if not self.spec.get(key):
                raise PlannerError(f"chat planner {folder or ''}: '{key}' is not set in planner.json")
        self.name = f"chat-{self.spec['version']}({self.spec['model']})"
        key = os.environ.get(self.spec.get("api_key_env") or "", "")
        self.client = client or httpx.Client(timeout=float(self.spec.get("timeout_s", 30)),
                                             headers={"Authorization": f"Bearer {key}"} if key else {})
        self.schema = plan_schema()
        self.system = SYSTEM.format(library=json.dumps(library_dict(), indent=1))

    def request(self, text: str) -> dict:
        return {"model": self.spec["model"], "temperature": 0,
                "messages": [{"role": "system", "content": self.system}, {"role": "user", "content": text}],
                "response_format": {"type": "json_schema",
                                    "json_schema": {"name": "skill_plan", "strict": True, "schema": self.schema}}}

    def plan(self, text: str) -> Plan:
        url = f"{self.spec['endpoint']}/chat/completions"
        try:
            r = self.client.post(url, json=self.request(text))
        except httpx.HTTPError as e:
            raise PlannerError(f"cannot reach the chat endpoint {url}: {e}") from None
        if r.status_code != 200:
            raise PlannerError(f"the chat endpoint {url} answered HTTP {r.status_code}: {r.text[:200]}")
        try:
            content = r.json()["choices"][0]["message"]["content"]
            answer = json.loads(content)
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise PlannerError(f"the chat endpoint {url} did not answer a JSON plan ({type(e).__name__}: {e})") from None
        try:
            jsonschema.validate(answer, self.schema)
        except jsonschema.ValidationError as e:
            raise PlannerError(f"the chat endpoint's plan breaks the schema at {list(e.absolute_path)}: {e.message}") from None
        if answer["refuse"]:
            return Plan(text, [], Refusal(answer["refuse"], answer["reason"] or "refused by the chat planner"), self.name)
        try:
            items = [check_step(s["skill"], s["args"], text) for s in answer["steps"]]
        except PlanError as e:
            raise PlannerError(f"the chat endpoint's plan is not well formed: {e}") from None
        return plan_from_steps(text, items, self.name)
