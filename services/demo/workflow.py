"""A season of council-approved work in Zwolle for `civfed demo`.

Twelve weeks from the demo's start: coordinators post tasks in the council's
categories every weekday, residents who chose to take part claim two or three a
week, log their minutes and have them approved (now and then rejected, with a
reason) by a coordinator; on Saturdays they shop at basic-economy merchants,
and in the tenth week many pay part of their municipal tax in tokens.
Deterministic: fixed keys, a seeded generator and the scenario clock.
"""

from __future__ import annotations

import datetime as dt
import random

from aggregates.workflow import WorkLog
from services.city import CityApplication
from services.demo.clock import ScenarioClock
from services.demo.groups import Step, ids, open_residents, run_group
from services.unit_of_work import Job

WEEKS = 12
SHOPS = [
    ("Supermarkt Assendorp", "food", True),
    ("Bakkerij Diepenmaat", "food", True),
    ("Energiecooperatie Zwolle", "energy", True),
    ("Apotheek Stadshagen", "care", True),
    ("Filmhuis Zwolle", "culture", False),  # not basic economy: the currency is refused there
]
COORDINATORS = ("coord:wijkteam-noord", "coord:wijkteam-zuid")


def zwolle(app: CityApplication, clock: ScenarioClock, step: Step, people: int) -> None:
    wf = app.workflow
    assert wf is not None and app.city.config.workflow is not None
    rnd = random.Random(5)
    clock.day(0)
    wallets = open_residents(app, people, step)
    taking_part = [w for w in wallets if rnd.random() < 0.7]  # by choice; nobody else is recorded
    shops = ids(
        run_group(
            app,
            [
                app.register_merchant(f"demo:shop{i}", n, c, True, basic)
                for i, (n, c, basic) in enumerate(SHOPS)
            ],
            step,
        ),
        "merchant_id",
    )
    basic, cinema = shops[:4], shops[4]
    categories = [c.code for c in app.city.config.workflow.categories]
    slots = max(3, len(taking_part) * 3 // 10)
    for week in range(WEEKS):
        monday = clock.day(7 * week)
        posts, posted = [], []
        for k in range(5):
            for half, (h0, h1) in enumerate(((9, 13), (13, 17))):
                day = dt.datetime.combine(monday + dt.timedelta(days=k), dt.time(h0), dt.UTC)
                coordinator = COORDINATORS[half]
                category = categories[(k * 2 + half + week) % len(categories)]
                key = f"demo:task{week}:{k}:{half}"
                posts.append(
                    wf.post_task(
                        key, category, f"Wijk {k + 1}", day, day.replace(hour=h1), slots, coordinator
                    )
                )
                posted.append((k, coordinator))
        tasks = list(zip(ids(run_group(app, posts, step), "task_id"), posted, strict=True))
        wanted = [(w, t) for w in taking_part for t in rnd.sample(tasks, rnd.choice((2, 2, 3)))]
        claimed = run_group(
            app, [wf.claim_task(f"demo:claim{week}:{w}:{t[0]}", t[0], w) for w, t in wanted], step
        )
        done = [pair for pair, r in zip(wanted, claimed, strict=True) if isinstance(r, dict)]
        for k in range(5):
            clock.now = dt.datetime.combine(monday + dt.timedelta(days=k), dt.time(18), dt.UTC)
            cmds: list[Job] = []
            for w, (task, (day_k, coordinator)) in done:
                if day_k != k:
                    continue
                cmds.append(wf.log_minutes(f"demo:log{task}:{w}", task, w, rnd.randint(150, 240)))
                log = WorkLog.create_id(app.key, task, w)
                if rnd.random() < 0.04:
                    reason = "task cancelled for a storm warning; no work was done"
                    cmds.append(wf.reject_log(f"demo:reject{log}", log, coordinator, reason))
                else:
                    cmds.append(wf.approve_log(f"demo:approve{log}", log, coordinator))
            run_group(app, cmds, step)
        clock.day(7 * week + 5)  # Saturday: shopping in the basic economy
        spends = [
            app.spend(f"demo:spend{week}:{i}", w, rnd.choice(basic), rnd.randint(200, 600), f"bon-{week}-{i}")
            for i, w in enumerate(taking_part)
            if rnd.random() < 0.7
        ]
        spends += [app.spend(f"demo:film{week}", taking_part[0], cinema, 100, f"film-{week}")]  # refused
        run_group(app, spends, step)
        if week == 9:
            run_group(
                app,
                [
                    wf.pay_tax(f"demo:tax{i}", w, rnd.randint(300, 900), f"AANSLAG-2026-{i:05d}")
                    for i, w in enumerate(taking_part)
                    if rnd.random() < 0.8
                ],
                step,
            )
