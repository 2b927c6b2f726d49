"""One self-contained HTML report per run (``academy report RUN``; ``academy run`` writes it).

It reads only what the run folder holds (``flywheel.json`` and the cycles' artefacts) and embeds
every plot as a PNG and every sample video as an mp4 in the one file, so it can be mailed or
archived without its folder. Sections, each drawn only when the run has its data:

- the summary per cycle (release, exam, rollout, fleet success, time per stage);
- fleet success per cycle (Wilson 95% intervals, the release each shift ran);
- success per task and stage (exam in simulation, exam on reality robots, the fleet's shift);
- simulation against reality robots (each release's exam, per skill);
- learning curves (training loss per cycle);
- practice: curriculum levels and selection success over updates;
- the world model's k-step open-loop error against the no-change baseline;
- the rollout timeline by cohort (which release each robot ran, round by round);
- sample videos of the last release's policy.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #1d2330; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #dde1e8; }
table { border-collapse: collapse; } th, td { border-bottom: 1px solid #e3e6eb; padding: 3px 8px; text-align: left; }
th { background: #eef0f4; } img { max-width: 100%; } .muted { color: #778; }
video { width: 320px; margin-right: 8px; }
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _frac(p) -> str:
    return f"{p[0]}/{p[1]} ({p[0] / p[1]:.0%})" if p and p[1] else "–"


def _rate(p) -> float:
    return p[0] / p[1] if p and p[1] else np.nan


def summary_table(fly: dict) -> str:
    rows = []
    for c in fly["cycles"]:
        rel, dep = c.get("release") or {}, c.get("deploy") or {}
        exam = "; ".join(f"{k} {_frac(v['nominal'])} / {_frac(v['reality'])}" for k, v in (rel.get("exam") or {}).items())
        secs = ", ".join(f"{k} {v:.0f}" for k, v in (c.get("stage_seconds") or {}).items())
        rows.append(f"<tr><td>{c['cycle']}</td><td>{rel.get('released') or 'refused: ' + html.escape('; '.join(rel.get('reasons') or []))}"
                    f"</td><td>{html.escape(exam)}</td><td>{html.escape(str(dep.get('state', '–')))}</td>"
                    f"<td>{_frac((c.get('fleet') or {}).get('all'))}</td><td class=muted>{html.escape(secs)}</td></tr>")
    return ("<table><tr><th>cycle</th><th>release</th><th>exam per skill: simulation / reality robots</th>"
            "<th>rollout</th><th>fleet success</th><th>seconds per stage</th></tr>" + "".join(rows) + "</table>")


def per_task_plot(fly: dict) -> str:
    cycles = fly["cycles"]
    tasks = sorted({t for c in cycles for t in ((c.get("fleet") or {}).get("tasks") or {})})
    if not tasks:
        return ""
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.2), sharey=True, squeeze=False)
    stages = (("exam, simulation", lambda c, t: _rate(((c.get("release") or {}).get("exam") or {}).get(t, {}).get("nominal"))),
              ("exam, reality robots", lambda c, t: _rate(((c.get("release") or {}).get("exam") or {}).get(t, {}).get("reality"))),
              ("fleet shift", lambda c, t: _rate(((c.get("fleet") or {}).get("tasks") or {}).get(t))))
    x = np.arange(len(cycles))
    for ax, t in zip(axes[0], tasks):
        for i, (name, get) in enumerate(stages):
            ax.bar(x + (i - 1) * 0.27, [get(c, t) for c in cycles], 0.27, label=name)
        ax.set_title(t)
        ax.set_xticks(x, [f"cycle {c['cycle']}" for c in cycles])
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("success")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    return _png(fig)


def sim_vs_reality_plot(fly: dict) -> str:
    pts = [(c["cycle"], t, _rate(v["nominal"]), _rate(v["reality"])) for c in fly["cycles"]
           for t, v in (((c.get("release") or {}).get("exam")) or {}).items()]
    if not pts:
        return ""
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    for t in sorted({p[1] for p in pts}):
        mine = [p for p in pts if p[1] == t]
        ax.plot([p[2] for p in mine], [p[3] for p in mine], "o-", label=t)
        for p in mine:
            ax.annotate(f"c{p[0]}", (p[2], p[3]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="exam success in simulation", ylabel="exam success on reality robots")
    ax.legend(fontsize=8)
    return _png(fig)


def learning_curves_plot(run: Path, fly: dict) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    drawn = False
    for c in fly["cycles"]:
        info = run / "cycles" / str(c["cycle"]) / "policy" / "train.json"
        if info.exists():
            curve = np.array(json.loads(info.read_text())["loss_curve"])
            ax.plot(curve[:, 0], curve[:, 1], label=f"cycle {c['cycle']}")
            drawn = True
    if not drawn:
        plt.close(fig)
        return ""
    ax.set(yscale="log", xlabel="training step", ylabel="L1 loss (normalised)")
    ax.legend(fontsize=8)
    return _png(fig)


def practice_plot(run: Path, fly: dict) -> str:
    logs = [(c["cycle"], run / "cycles" / str(c["cycle"]) / "practice" / "log.jsonl") for c in fly["cycles"]]
    logs = [(k, [json.loads(line) for line in p.read_text().splitlines() if line.strip()]) for k, p in logs if p.exists()]
    logs = [(k, rows) for k, rows in logs if rows]
    if not logs:
        return ""
    k, rows = logs[-1]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    for task, ladders in rows[0]["ladders"].items():
        for term in ladders:
            a.plot([r["update"] for r in rows], [r["ladders"][task][term] for r in rows], label=f"{task}.{term}")
    a.set(xlabel="PPO update", ylabel="curriculum level (0 easy .. 1 target)", title=f"curriculum, cycle {k}")
    a.legend(fontsize=7)
    for task in rows[0]["train_success"]:
        ys = [r["train_success"][task] for r in rows]
        b.plot([r["update"] for r in rows], [np.nan if y is None else y for y in ys], "o-", label=task)
    b.set(xlabel="PPO update", ylabel="training-episode success", ylim=(0, 1.02), title="practice success")
    b.legend(fontsize=8)
    return _png(fig)


def kstep_plot(run: Path, fly: dict) -> str:
    fits = [run / "cycles" / str(c["cycle"]) / "dream" / "world-model" / "fit.json" for c in fly["cycles"]]
    fits = [p for p in fits if p.exists()]
    if not fits:
        return ""
    kstep = json.loads(fits[-1].read_text()).get("kstep") or {}
    if not kstep:
        return ""
    from academy.dream.fit import kstep_figure

    fig = kstep_figure(kstep)
    return _png(fig)


def rollout_timeline_plot(fly: dict) -> str:
    cols, labels = [], []
    for c in fly["cycles"]:
        dep = c.get("deploy") or {}
        for i, r in enumerate(dep.get("rounds") or []):
            cols.append(r.get("installed") or {})
            labels.append(f"c{c['cycle']}.{i + 1}\ncohort {r.get('cohort', '?')}")
    robots = sorted({s for col in cols for s in col})
    if not robots:
        return ""
    grid = np.array([[col.get(s, 0) or 0 for col in cols] for s in robots], float)
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(cols) + 2), 0.3 * len(robots) + 1.6))
    releases = sorted({int(v) for v in grid.ravel() if v})
    cmap = plt.get_cmap("viridis", max(len(releases), 1))
    for j in range(grid.shape[1]):
        for i in range(grid.shape[0]):
            v = int(grid[i, j])
            if v:
                ax.add_patch(plt.Rectangle((j - 0.45, i - 0.4), 0.9, 0.8, color=cmap(releases.index(v))))
                ax.text(j, i, str(v), ha="center", va="center", color="white", fontsize=8)
    ax.set(xlim=(-0.6, grid.shape[1] - 0.4), ylim=(-0.6, len(robots) - 0.4))
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_yticks(range(len(robots)), robots, fontsize=7)
    ax.invert_yaxis()
    ax.set_title("release installed per robot after each rollout round (dock + work)")
    return _png(fig)


def videos_html(run: Path) -> str:
    out = []
    for p in sorted((run / "videos").glob("*.mp4")):
        data = base64.b64encode(p.read_bytes()).decode()
        out.append(f'<figure style="display:inline-block"><video controls muted loop src="data:video/mp4;base64,{data}">'
                   f'</video><figcaption class=muted>{html.escape(p.stem)}</figcaption></figure>')
    return "".join(out)


def write_report(run: str | Path, out: str | Path | None = None) -> Path:
    run = Path(run)
    path = run / "flywheel.json"
    if not path.exists():
        raise FileNotFoundError(f"{run} is not a run folder of academy run: flywheel.json missing")
    fly = json.loads(path.read_text())
    sections = [("Summary", summary_table(fly))]
    if (run / "flywheel.png").exists():
        data = base64.b64encode((run / "flywheel.png").read_bytes()).decode()
        sections.append(("Fleet success per cycle", f'<img src="data:image/png;base64,{data}">'))
    for title, body in (("Success per task and stage", per_task_plot(fly)),
                        ("Simulation against reality robots (the exam of each cycle's release)", sim_vs_reality_plot(fly)),
                        ("Learning curves", learning_curves_plot(run, fly)),
                        ("Practice: curriculum levels and success", practice_plot(run, fly)),
                        ("World model: k-step open-loop error (last cycle)", kstep_plot(run, fly)),
                        ("Rollout timeline by cohort", rollout_timeline_plot(fly)),
                        ("Sample videos (the last release's policy)", videos_html(run))):
        sections.append((title, body or '<p class="muted">not in this run</p>'))
    cfg = html.escape(json.dumps(fly.get("config", {}), indent=1))
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>Academy run {html.escape(run.name)}</title>"
           f"<style>{STYLE}</style></head><body><h1>Academy run {html.escape(run.name)}</h1>"
           f"<p class=muted>{len(fly['cycles'])} cycle(s), {fly.get('seconds', 0):.0f} s</p>"
           + "".join(f"<h2>{html.escape(t)}</h2>{b}" for t, b in sections)
           + f"<h2>Settings</h2><pre>{cfg}</pre></body></html>")
    out = Path(out) if out else run / "report.html"
    out.write_text(doc)
    return out


def sample_videos(run: str | Path, tasks: list[str], serial: str = "AH1-9001", seed: int = 777,
                  on_video=None) -> list[Path]:
    """One episode per task by the run's last release (its bundle's policy) on a held-out reality
    robot, rendered small for the report: ``RUN/videos/<task>-release<N>-<serial>-<outcome>.mp4``."""
    from academy.learn.policy import Policy, PolicyAgent
    from academy.sim.rollout_expert import make_env, rollout
    from academy.video import write_mp4

    run = Path(run)
    bundles = sorted((run / "releases" / "bundles").glob("*/policy"), key=lambda p: int(p.parent.name))
    if not bundles:
        return []
    policy_dir = bundles[-1]
    policy, out = Policy.load(policy_dir), []
    for task in tasks:
        result = rollout(make_env(task, None, serial), PolicyAgent(policy), seed, video=True, frame_size=(180, 240))
        name = f"{task}-release{policy_dir.parent.name}-{serial}-{'success' if result.success else 'failure'}.mp4"
        out.append(write_mp4(run / "videos" / name, result.frames))
        if on_video:
            on_video(out[-1])
    return out
