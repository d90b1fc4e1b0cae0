"""What the demo shows: the live panel while it runs and the printed report at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from clients.demo.sim import Demo


def render(demo: Demo) -> Group:
    cfg = demo.config
    t = min(demo.now(), cfg.duration)
    bar_w = 30
    done = int(bar_w * t / cfg.duration) if cfg.duration else bar_w
    head = Text.assemble(
        ("Mycelium demo ", "bold"),
        (f"[{'#' * done}{'.' * (bar_w - done)}] ", "cyan"),
        f"{t:5.1f}/{cfg.duration:g}s   live page: ",
        (demo.server.url + "/", "bold underline"),
    )
    c = demo.counts
    stats = Table.grid(padding=(0, 3))
    stats.add_row(
        f"agents {len(demo.members)}",
        f"proposals {c.proposals}/{len(demo.proposals)}",
        f"ratings {c.ratings} ({c.rerates} re-ratings)",
        f"outcomes {c.completed} completed, {c.running} running",
    )
    stats.add_row(
        f"owner feedback {c.feedback}",
        f"notices {c.notices}",
        f"score frames {c.score_frames}",
        f"refused {c.refused}",
    )
    acc = Text("accuracy on ratings owners never gave: ")
    if demo.curve:
        last = demo.curve[-1]
        acc.append(f"with results {last['accuracy_with_stream']:.3f}", "green")
        acc.append("  vs  ")
        acc.append(f"ignoring them {last['accuracy_without_stream']:.3f}", "yellow")
        acc.append(f"   (at {last['t']:.0f}s, {last['pairs']} pairs)", "dim")
    else:
        acc.append("first measurement soon", "dim")
    top = Table(
        title="forum's top proposals (shrunk mean) vs hidden truth",
        title_justify="left",
        expand=False,
    )
    top.add_column("#", justify="right")
    top.add_column("proposal")
    top.add_column("forum", justify="right")
    top.add_column("ratings", justify="right")
    top.add_column("outcomes", justify="right")
    top.add_column("true rank", justify="right")
    true_rank = {demo.proposals[i].slug: r + 1 for r, i in enumerate(np.argsort(-demo.utility))}
    ranked = sorted(
        ((v.get("shrunk_mean") or 0.0, t, v) for t, v in demo.last_scores.items()),
        key=lambda x: (-x[0], x[1]),
    )[:8]
    for r, (score, target, v) in enumerate(ranked, 1):
        slug = demo.proposal_ids[target]
        o = v.get("outcomes") or {}
        top.add_row(
            str(r),
            Text(demo.proposals[demo.slug_index[slug]].title[:58]),
            f"{score:+.2f}",
            str(v.get("count", 0)),
            str(o.get("communities", 0)),
            str(true_rank[slug]),
        )
    story = demo.story
    cases = Text("cases: ", style="dim")
    if story is not None:
        cases.append(f"dispute {story.status.get(story.dispute, 'published')}, grievance {story.status.get(story.grievance, 'published')}")
    else:
        cases.append("the dispute and the grievance open soon")
    return Group(head, stats, acc, cases, top)


def print_report(console: Console, report: dict[str, Any]) -> None:
    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    console.print(Text("Report", style="bold"))
    console.print(
        f"  forum ranking vs true utility (Spearman, shrunk mean): {f(report['rank_correlation'])}"
        f" over {report['proposals_ranked']} proposals"
    )
    console.print(
        f"  bridging score vs true utility (Spearman):              {f(report['rank_correlation_bridging'])}"
    )
    st = report.get("statuses") or {}
    if st:
        console.print(
            f"  statuses: {', '.join(f'{k} {n}' for k, n in st['by_status'].items())}; truly broadly good"
            f" labelled positive: {st['broadly_good_positive']} of {st['broadly_good']};"
            f" liked by every group (> +0.3) yet 'split': {st['all_groups_above_split']}"
        )
    console.print(
        f"  measured outcomes vs true effect (Spearman):             {f(report['rank_correlation_outcomes'])}"
        f" over {report['proposals_tried']} tried proposals"
    )
    console.print(
        f"  agents' accuracy WITH the streamed results:             {f(report['accuracy_with_stream'])}"
    )
    console.print(
        f"  shadow models' accuracy WITHOUT them:                   {f(report['accuracy_without_stream'])}"
    )
    print_governance(console, report.get("governance"))
    arb = report.get("arbitration") or {}
    for name in ("dispute", "grievance"):
        c = arb.get(name)
        if c:
            rounds = "; ".join(f"{'appeal' if i else 'jury'} of {r['jurors']}: {r['votes']} votes counted, "
                               f"{r['not_counted']} not, {r['verdict'] or 'pending'}" for i, r in enumerate(c["rounds"]))  # fmt: skip
            console.print(f"  {name}: {c['status']} ({c['layer']} layer){' - ' + rounds if rounds else ''}")
    graph = arb.get("moral_graph") or {}
    if graph.get("ranking"):
        console.print(f"  moral graph ({graph['statements']} statements): "
                      + " > ".join(r["card"] for r in graph["ranking"][:5]))  # fmt: skip
        for s in graph.get("suggestions", []):
            console.print(Text(f"    {s}", style="dim"))
    curve = report["curve"]
    if curve:
        line = "  learning curve (t: with / without): " + ", ".join(
            f"{p['t']:.0f}s {f(p['accuracy_with_stream'])}/{f(p['accuracy_without_stream'])}"
            for p in curve
        )
        console.print(Text(line, style="dim"))


def print_governance(console: Console, gov: dict[str, Any] | None) -> None:
    """The governance loop's lines of the report."""
    if not gov:
        return

    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    console.print(
        f"  outcome error, communities like yours vs global:      {f(gov['like_yours_error'])} vs {f(gov['global_error'])}"
        f" over {gov['like_yours_pairs']} (community, proposal) pairs"
    )
    console.print(
        f"  replies {gov['replies']} ({gov['nested_replies']} nested), amendments {gov['amendments']}"
        f" ({gov['amendments_accepted']} accepted, {gov['amendments_forked']} forked), adoptions {gov['adoptions']}"
        f" ({gov['drops']} dropped), opinion groups with arguments shown {gov['groups_with_arguments_shown']}/{gov['groups']}"
    )
