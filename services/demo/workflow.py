"""A season of council-approved work in Zwolle for `civfed demo`, over the node's contracts.

Twelve weeks from the demo's start: coordinators post tasks in the council's
categories every weekday, residents who chose to take part claim two or three a
week, log their minutes and have them approved (now and then rejected, with a
reason) by a coordinator; on Saturdays they shop at basic-economy merchants,
and in the tenth week many pay part of their municipal tax in tokens.

Everything goes through Zwolle's node as a deployed city's would: the desk opens
wallets and registers the shops, coordinators call with their own staff tokens
(so the events name `staff:<subject>`, and four eyes compares those subjects),
residents claim, log, shop and pay tax with their holder credential.
Deterministic: fixed keys, a seeded generator and the scenario clock.
"""

from __future__ import annotations

import datetime as dt
import random

from civfed.v1 import wallet_pb2, workflow_pb2
from services.demo.city_node import Call, DemoNode, answered, refused
from services.demo.clock import ScenarioClock
from services.demo.groups import Step

WEEKS = 12
SHOPS = [
    ("Supermarkt Assendorp", "food", True),
    ("Bakkerij Diepenmaat", "food", True),
    ("Energiecooperatie Zwolle", "energy", True),
    ("Apotheek Stadshagen", "care", True),
    ("Filmhuis Zwolle", "culture", False),  # not basic economy: the currency is refused there
]
# The coordinators' subjects at the city's identity provider.
COORDINATORS = ("wijkteam-noord", "wijkteam-zuid")


def zwolle(node: DemoNode, clock: ScenarioClock, step: Step, people: int) -> None:
    app, wf = node.app, node.stubs.workflow
    assert app.city.config.workflow is not None
    rnd = random.Random(5)
    clock.day(0)
    consent = app.city.config.consent_versions[-1]
    wallets = node.open_wallets([f"demo:w{i}" for i in range(people)], "resident", consent, step)
    taking_part = [w for w in wallets if rnd.random() < 0.7]  # by choice; nobody else is recorded
    shops = node.register_merchants(
        [(f"demo:shop{i}", n, c, True, basic) for i, (n, c, basic) in enumerate(SHOPS)], step
    )
    basic, cinema = shops[:4], shops[4]
    coordinators = [node.staff(s, "work_coordinator") for s in COORDINATORS]
    categories = [c.code for c in app.city.config.workflow.categories]
    slots = max(3, len(taking_part) * 3 // 10)
    for week in range(WEEKS):
        monday = clock.day(7 * week)
        posts, posted = [], []
        for k in range(5):
            for half, (h0, h1) in enumerate(((9, 13), (13, 17))):
                day = dt.datetime.combine(monday + dt.timedelta(days=k), dt.time(h0), dt.UTC)
                request = workflow_pb2.PostTaskRequest(
                    idempotency_key=f"demo:task{week}:{k}:{half}",
                    category=categories[(k * 2 + half + week) % len(categories)],
                    place=f"Wijk {k + 1}",
                    starts_at=day.isoformat(),
                    ends_at=day.replace(hour=h1).isoformat(),
                    slots=slots,
                )
                posts.append(Call(wf.PostTask, request, coordinators[half]))
                posted.append((k, half))
        task_ids = [t.task_id for t in answered(node.calls(posts, step))]
        tasks = list(zip(task_ids, posted, strict=True))
        wanted = [(w, t) for w in taking_part for t in rnd.sample(tasks, rnd.choice((2, 2, 3)))]
        # Claims on one task go in order (its slots go to the first to claim); tasks side by side.
        lanes: dict[str, list[tuple[str, Call]]] = {task: [] for task, _ in tasks}
        for w, (task, _) in wanted:
            claim = workflow_pb2.ClaimTaskRequest(
                idempotency_key=f"demo:claim{week}:{w}:{task}", task_id=task, wallet_id=w
            )
            lanes[task].append((w, Call(wf.ClaimTask, claim, node.holder(w))))
        claimed = node.lanes([[c for _, c in lane] for lane in lanes.values()], step)
        got = {
            (w, task)
            for (task, lane), results in zip(lanes.items(), claimed, strict=True)
            for (w, _), r in zip(lane, results, strict=True)
            if not refused(r)
        }
        done = [(w, t) for w, t in wanted if (w, t[0]) in got]
        for k in range(5):
            clock.now = dt.datetime.combine(monday + dt.timedelta(days=k), dt.time(18), dt.UTC)
            today = [(w, task, half) for w, (task, (day_k, half)) in done if day_k == k]
            # Drawn in the order the in-process season drew them: minutes, then the decision.
            drawn = [(rnd.randint(150, 240), rnd.random() < 0.04) for _ in today]
            logs = node.calls(
                [
                    Call(
                        wf.LogMinutes,
                        workflow_pb2.LogMinutesRequest(
                            idempotency_key=f"demo:log{task}:{w}", task_id=task, wallet_id=w, minutes=minutes
                        ),
                        node.holder(w),
                    )
                    for (w, task, _), (minutes, _) in zip(today, drawn, strict=True)
                ],
                step,
            )
            # The coordinator who posted the task decides; the resident logged, so four eyes hold.
            # One person's decisions go in order (the lots they mint are spent oldest first).
            decisions: dict[str, list[Call]] = {}
            for (w, _, half), (_, rejected), log in zip(today, drawn, logs, strict=True):
                if refused(log):
                    continue
                if rejected:
                    reason = "task cancelled for a storm warning; no work was done"
                    request = workflow_pb2.RejectLogRequest(
                        idempotency_key=f"demo:reject{log.log_id}", log_id=log.log_id, reason=reason
                    )
                    decision = Call(wf.RejectLog, request, coordinators[half])
                else:
                    approve = workflow_pb2.ApproveLogRequest(
                        idempotency_key=f"demo:approve{log.log_id}", log_id=log.log_id
                    )
                    decision = Call(wf.ApproveLog, approve, coordinators[half])
                decisions.setdefault(w, []).append(decision)
            node.lanes(list(decisions.values()), step)
        clock.day(7 * week + 5)  # Saturday: shopping in the basic economy
        spends = [
            spend(
                node, f"demo:spend{week}:{i}", w, rnd.choice(basic), rnd.randint(200, 600), f"bon-{week}-{i}"
            )
            for i, w in enumerate(taking_part)
            if rnd.random() < 0.7
        ]
        spends += [spend(node, f"demo:film{week}", taking_part[0], cinema, 100, f"film-{week}")]  # refused
        node.calls(spends, step)
        if week == 9:
            taxes = [
                Call(
                    wf.PayTax,
                    workflow_pb2.PayTaxRequest(
                        idempotency_key=f"demo:tax{i}",
                        wallet_id=w,
                        amount=rnd.randint(300, 900),
                        assessment_ref=f"AANSLAG-2026-{i:05d}",
                    ),
                    node.holder(w),
                )
                for i, w in enumerate(taking_part)
                if rnd.random() < 0.8
            ]
            node.calls(taxes, step)


def spend(node: DemoNode, key: str, wallet: str, shop: str, amount: int, ref: str) -> Call:
    request = wallet_pb2.SpendRequest(
        idempotency_key=key, wallet_id=wallet, merchant_id=shop, amount=amount, purchase_ref=ref
    )
    return Call(node.stubs.wallet.Spend, request, node.holder(wallet))
