"""Carry out a plan on a robot: each step by the one policy, conditioned on the step's instruction.

Each step is an episode of its skill's task on the same robot (the nominal simulation, or a
reality robot by serial), in the order of the plan; a step's arguments set the scene and the goal
(``sort_cells`` colours become the task's ``colours`` knob, so the goal lists only the cells asked
for and success counts only those; a count sets ``n_cells``). The policy acts with the step's
instruction vector: the embedding of the skill's normal form through the planner's projection, as
the policy was trained with it (``academy learn --instructions PLANNER``, kept in the checkpoint's
``instructions.json``; a planner with other vectors is refused). A policy trained without
instructions gets zeros there, as in its training, and the summary says so. The plan stops at the
first step that fails: the robot hands back rather than go on from a state the next step does not
expect.

The workcell's tasks each set their own scene (sort_cells parks the part, place_part the cells),
so the steps of one plan run as consecutive episodes rather than in one shared scene.
"""

from __future__ import annotations

from pathlib import Path

from academy.command.planner import other_vector
from academy.command.skills import Plan, Step
from academy.learn.checkpoint import INSTRUCTIONS_FILE, trained_tasks
from academy.learn.policy import Policy, PolicyAgent
from academy.sim.rollout_expert import make_env, rollout
from academy.sim.tasks.sort_cells import colour_mask


class CommandError(ValueError):
    pass


def step_difficulty(step: Step) -> dict:
    if step.skill != "sort_cells":
        return {}
    out = {"colours": colour_mask(step.args["colours"])}
    if step.args["count"] is not None:
        out["n_cells"] = step.args["count"]
    return out


def carry_out(plan: Plan, policy_dir: str | Path, planner=None, serial: str | None = None, seed: int = 0,
              video_dir: str | Path | None = None, on_step=None) -> dict:
    """Run ``plan`` on one robot; returns per-step outcomes. ``planner``, if given, is checked to hold
    the instruction vectors the policy was trained with."""
    if not plan.ok:
        raise CommandError(f"the plan was refused, nothing to carry out: {plan.refused}")
    knows = trained_tasks(policy_dir)
    missing = [s.skill for s in plan.steps if s.skill not in knows]
    if missing:
        raise CommandError(f"the policy {policy_dir} was not trained on {sorted(set(missing))}; it knows {knows}")
    conditioned = (Path(policy_dir) / INSTRUCTIONS_FILE).exists()
    policy = Policy.load(policy_dir)
    vectors = (getattr(planner, "spec", None) or {}).get("skill_vectors") or {}
    steps = []
    for i, step in enumerate(plan.steps):
        vec = policy.instructions[policy.tasks.index(step.skill)]  # what it was trained with; zeros if none
        if conditioned and step.skill in vectors and other_vector(vectors[step.skill], vec):
            raise CommandError(f"the planner's instruction vector for {step.skill} is not the one the policy was "
                               "trained with: plan with the planner the policy was trained with (instructions.json)")
        env = make_env(step.skill, step_difficulty(step), serial)
        result = rollout(env, PolicyAgent(policy, vec), seed=seed + i, video=video_dir is not None)
        out = {"step": i + 1, "skill": step.skill, "args": step.args, "seed": seed + i, "success": result.success,
               "seconds": round(result.seconds, 2)}
        if video_dir is not None:
            from academy.video import write_mp4

            out["video"] = str(write_mp4(Path(video_dir) / f"step{i + 1}-{step.skill}.mp4", result.frames))
        steps.append(out)
        if on_step:
            on_step(out)
        if not result.success:
            break
    done = len(steps) == len(plan.steps) and all(s["success"] for s in steps)
    return {"text": plan.text, "robot": serial or "simulation", "policy": str(policy_dir),
            "conditioned_on_instructions": conditioned, "steps": steps, "not_run": len(plan.steps) - len(steps),
            "success": done}
