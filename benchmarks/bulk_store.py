"""A city's PostgreSQL store of many seasons, written as the application writes it, fast.

The application writes some 2,400 to 6,200 stored events a second on this two-core machine
(seasons of 2,000 people, one group commit per day; 6,200 into an empty store, measured up
to a million), so a store of ten million would take the better part of an hour, or more,
before a rebuild could be timed; this writes some 24,000 a second. It builds one season
through the application (the template: its wallets, receipts, fund draws and shop), reads
its stored events back through the application's own mapper (personal fields opened with
the key store), and then writes clone after clone of it:

- every aggregate the season made gets a fresh id in each clone: a wallet or a shop a
  random one, as the application gives them, a receipt the id its idempotency key names
  (the key is the template's with the season's tag replaced, `bench0:a3:17` -> `bench5:a3:17`);
- every id, idempotency key and activity id inside an event is replaced the same way, and a
  receipt's fingerprint is that of the template's command with the clone's ids and key;
- aggregates the season did not make (the city's funds) keep their id, and the clone's
  events on them follow the versions already stored;
- each clone wallet gets its own new key in the key store (wrapped by the key-store key,
  as the key store wraps them), and the events are encoded again by the application's own
  mapper, so every personal field is sealed under the clone's key, bound to the clone's ids;
- the stored events go in with COPY into the recorder's own table (under the recorder's own
  table lock), in the template's order, one clone after another, so notification ids number
  them in that order; the keys go in with COPY into the key store's table in the same
  transaction.

A clone's events keep the template's timestamps (and so its days): the application, writing
the same season later, would stamp them later.

One thing the application would do differently at scale: a fund's budget. The clones draw
on the city's funds as the template did; when the draws of all the clones would exceed what
a fund has left, the fund is topped up first, through the application (proposed by one
person and approved by another), by what the clones will draw, so the store stays one the
application could have written (a city that tops up its grant), rather than a season
refused for an exhausted fund.

Snapshots are written as the application writes them (every CIVFED_SNAPSHOT_INTERVAL
events of a wallet, a fund or a shop): those of the aggregates the season made are cloned
with them, and the funds' are taken from the fund's state as each clone's events move it on,
at the versions the application would take them.

One process encodes and copies: a second one encoding while this one copied was no faster
on two cores (PostgreSQL's COPY keeps the other one busy).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterable, Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregates.receipt import Receipt  # noqa: E402
from services.city import CityApplication  # noqa: E402
from services.commands import Command  # noqa: E402
from services.privacy.key_wrapping import KEY_BYTES  # noqa: E402
from services.privacy.sealing import ShreddingMapper  # noqa: E402

# Stored events copied per transaction (whole clones; at least this many).
BATCH_ROWS = 50_000


@dataclass
class Template:
    """One season as the application stored it, decoded and opened."""

    city: str
    tag: str
    events: list[Any]
    # Aggregates the season made: id -> how a clone's id is made ("receipt": from its key).
    made: dict[UUID, str]
    # Aggregates it only added to (funds): id -> how many of its events the season holds.
    shared: dict[UUID, int]
    commands: dict[str, Command]
    owners: list[UUID]  # those of `made` with a key of their own (the wallets)
    aliases: list[tuple[UUID, UUID]]  # (subject, owner), both of `made`
    stored: int = 0  # how many stored events one season is
    fund_draws: dict[UUID, int] = field(default_factory=dict)
    # Per event: the names of its fields that hold an id, a key or an id's text (the only
    # ones a clone changes), and for a receipt the command it records.
    plans: list[tuple[tuple[str, ...], Command | None]] = field(default_factory=list)
    snapshots: list[Any] = field(default_factory=list)  # of the aggregates it made

    def plan(self) -> None:
        texts = {str(i) for i in self.made}
        prefix = f"{self.tag}:"

        def names(value: Any) -> bool:
            if isinstance(value, UUID):
                return value in self.made
            if isinstance(value, str):
                return value.startswith(prefix) or value in texts
            if isinstance(value, dict):
                return any(names(k) or names(v) for k, v in value.items())
            if isinstance(value, list | tuple):
                return any(names(v) for v in value)
            return False

        self.plans = []
        for event in self.events:
            fields = tuple(n for n, v in vars(event).items() if n != "originator_id" and names(v))
            cmd = None
            if type(event).__qualname__ == "Receipt.Recorded":
                cmd = self.commands.get(event.key)
                if cmd is None:
                    raise ValueError(f"no command kept for the receipt of {event.key!r}")
            self.plans.append((fields, cmd))


def build_template(app: CityApplication, tag: str, people: int, days: int) -> Template:
    """One season through the application, with every command it ran kept by its key."""
    from tests.kafka.activity import season

    commands: dict[str, Command] = {}
    job = app.job

    def keeping(cmd: Any) -> Any:
        if isinstance(cmd, Command):
            commands[cmd.idempotency_key] = cmd
        return job(cmd)

    app.job = keeping  # type: ignore[method-assign]
    before = app.recorder.max_notification_id() or 0
    try:
        season(app, tag, people=people, days=days)
    finally:
        del app.job
    return read_template(app, tag, before, commands)


def read_template(app: CityApplication, tag: str, after: int, commands: dict[str, Command]) -> Template:
    mapper = app.mapper
    if not isinstance(mapper, ShreddingMapper):
        raise ValueError("the bulk store needs personal encryption on (CIVFED_PERSONAL_ENCRYPTION)")
    events: list[Any] = []
    made: dict[UUID, str] = {}
    shared: dict[UUID, int] = {}
    start = after
    while rows := app.recorder.select_notifications(start=start, limit=10_000, inclusive_of_start=False):
        for row in rows:
            event = mapper.to_domain_event(row)
            events.append(event)
            oid = row.originator_id
            assert isinstance(oid, UUID)
            if row.originator_version == 1:
                if oid.version != 4 and not row.topic.startswith("aggregates.receipt:Receipt."):
                    raise ValueError(f"cannot clone {row.topic}: its id is derived from its content")
                made[oid] = "receipt" if oid.version != 4 else "random"
            elif oid not in made:
                shared[oid] = shared.get(oid, 0) + 1
        start = rows[-1].id
    keys = mapper.keys
    wanted = [str(i) for i in made]
    known = set(wanted)
    owned = {str(r[0]) for r in _rows(keys, f"SELECT owner_id FROM {keys._keys}") if str(r[0]) in known}
    aliases = [
        (UUID(str(s)), UUID(str(o)))
        for s, o in _rows(keys, f"SELECT subject_id, owner_id FROM {keys._aliases}")
        if UUID(str(s)) in made
    ]
    draws: dict[UUID, int] = {}
    for event in events:
        if event.originator_id in shared and type(event).__qualname__ == "Fund.Drawn":
            draws[event.originator_id] = draws.get(event.originator_id, 0) + int(event.amount)
    template = Template(
        city=app.key,
        tag=tag,
        events=events,
        made=made,
        shared=shared,
        commands=commands,
        owners=[UUID(o) for o in wanted if o in owned],
        aliases=aliases,
        stored=len(events),
        fund_draws=draws,
    )
    template.plan()
    if app.snapshots is not None:
        template.snapshots = _snapshots_of(app, list(made))
    return template


def _snapshots_of(app: CityApplication, ids: list[UUID]) -> list[Any]:
    """The stored snapshots of these aggregates, decoded and opened."""
    recorder: Any = app.snapshots.recorder if app.snapshots is not None else None
    sql = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {}.{} WHERE originator_id = ANY(%s) "
        "ORDER BY originator_id, originator_version"
    ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
    with psycopg.connect(_dsn(app)) as conn:
        rows = conn.execute(sql, (ids,)).fetchall()
    return [
        app.mapper.to_domain_event(
            StoredEvent(originator_id=o, originator_version=v, topic=t, state=bytes(b))
        )
        for o, v, t, b in rows
    ]


def _rows(keys: Any, sql: str) -> list[tuple[Any, ...]]:
    return list(keys._run(sql))


# -- one clone ----------------------------------------------------------------------


class Clone:
    """The id and key mapping of clone number `n` of a template."""

    def __init__(self, template: Template, n: int, extra: dict[UUID, int]) -> None:
        """`extra`: how many events each shared aggregate had stored since the template."""
        self.n = n
        self.old_prefix = f"{template.tag}:"
        self.new_prefix = f"{clone_tag(template.tag, n)}:"
        self.ids: dict[UUID, UUID] = {}
        self.strs: dict[str, str] = {}
        for old, how in template.made.items():
            if how == "random":
                self.ids[old] = uuid4()
        for event in template.events:
            old = event.originator_id
            if template.made.get(old) == "receipt" and event.originator_version == 1:
                self.ids[old] = Receipt.create_id(template.city, self.text(event.key))
        self.strs = {str(old): str(new) for old, new in self.ids.items()}
        # The clones before this one (the template is number 0) added `count` each.
        self.version_offset = {oid: extra.get(oid, 0) + n * count for oid, count in template.shared.items()}

    def text(self, value: str) -> str:
        if value.startswith(self.old_prefix):
            return self.new_prefix + value[len(self.old_prefix) :]
        return self.strs.get(value, value)

    def value(self, value: Any) -> Any:
        if isinstance(value, UUID):
            return self.ids.get(value, value)
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.value(v) for v in value)
        return value

    def snapshot(self, snapshot: Any) -> Any:
        """A snapshot of an aggregate the season made, as this clone's."""
        clone = object.__new__(type(snapshot))
        clone.__dict__.update({name: self.value(v) for name, v in vars(snapshot).items()})
        return clone

    def command(self, cmd: Command) -> Command:
        changes = {f.name: self.value(getattr(cmd, f.name)) for f in dataclasses.fields(cmd)}
        return dataclasses.replace(cmd, **changes)

    def event(self, event: Any, plan: tuple[tuple[str, ...], Command | None]) -> Any:
        """The template's event as this clone's: `plan` names what changes (Template.plan)."""
        fields, cmd = plan
        state = dict(vars(event))
        old = event.originator_id
        state["originator_id"] = self.ids.get(old, old)
        state["originator_version"] = event.originator_version + self.version_offset.get(old, 0)
        for name in fields:
            state[name] = self.value(state[name])
        if cmd is not None:
            state["params_hash"] = self.command(cmd).fingerprint()
        clone = object.__new__(type(event))
        clone.__dict__.update(state)
        return clone


def clone_tag(tag: str, n: int) -> str:
    """`bench0` -> `bench5`: the tag the application path gives the season of that number."""
    return f"{tag.rstrip('0123456789')}{n}"


# -- encoding and copying ---------------------------------------------------------------

Row = tuple[UUID, int, str, bytes]


@dataclass
class Batch:
    events: list[Row] = field(default_factory=list)
    snapshots: list[Row] = field(default_factory=list)
    keys: list[tuple[str, bytes]] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)


class Shared:
    """The aggregates the clones add to but did not make (the funds), as the clones move
    them on, to snapshot them where the application would."""

    def __init__(self, app: CityApplication, ids: Iterable[UUID]) -> None:
        self.app = app
        # Copies: moving them on must not touch what the application's repository holds.
        self.aggregates = {oid: deepcopy(app.repository.get(oid)) for oid in ids}

    def apply(self, event: Any) -> Any | None:
        """The event applied; the snapshot the application would take after it, if any."""
        aggregate = event.mutate(self.aggregates[event.originator_id])
        self.aggregates[event.originator_id] = aggregate
        interval = self.app.snapshotting_intervals.get(type(aggregate))
        if self.app.snapshots is None or not interval or event.originator_version % interval:
            return None
        snapshot_class = getattr(type(aggregate), "Snapshot", type(self.app).snapshot_class)
        return snapshot_class.take(aggregate)


def encode(
    app: CityApplication, template: Template, numbers: range, extra: dict[UUID, int], rows: int = BATCH_ROWS
) -> Iterator[Batch]:
    """Clones `numbers` of the template, stored events ready to copy, in batches of whole
    clones of at least `rows` events (the last one smaller)."""
    mapper = app.mapper
    assert isinstance(mapper, ShreddingMapper)
    keys = mapper.keys
    wrapper = keys._wrapper
    shared = Shared(app, template.shared)
    batch = Batch()
    for n in numbers:
        clone = Clone(template, n, extra)
        now = time.monotonic()
        for owner in template.owners:
            new = clone.ids[owner]
            key = os.urandom(KEY_BYTES)
            batch.keys.append((str(new), wrapper.wrap(str(new), key)))
            keys._cache.put(new, (key, now))  # what key_for would read back
        batch.aliases += [(str(clone.ids[s]), str(clone.ids[o])) for s, o in template.aliases]
        for event, plan in zip(template.events, template.plans, strict=True):
            cloned = clone.event(event, plan)
            batch.events.append(_row(mapper.to_stored_event(cloned)))
            if event.originator_id in template.shared and (snapshot := shared.apply(cloned)) is not None:
                batch.snapshots.append(_row(mapper.to_stored_event(snapshot)))
        batch.snapshots += [_row(mapper.to_stored_event(clone.snapshot(s))) for s in template.snapshots]
        if len(batch.events) >= rows:
            yield batch
            batch = Batch()
    if batch.events:
        yield batch


def _row(stored: StoredEvent) -> Row:
    return (stored.originator_id, stored.originator_version, stored.topic, stored.state)


def copy(conn: psycopg.Connection[Any], app: CityApplication, batch: Batch) -> None:
    """One batch in one transaction: its keys and aliases, then its events, in order."""
    recorder: Any = app.recorder
    schema = recorder.datastore.schema
    mapper = app.mapper
    assert isinstance(mapper, ShreddingMapper)
    keys_table, aliases_table = mapper.keys._keys, mapper.keys._aliases
    with conn.transaction(), conn.cursor() as cur:
        # The recorder's own lock and notice: notification ids in commit order, listeners told.
        recorder._lock_table(cur)
        recorder._notify_channel(cur)
        with cur.copy(SQL("COPY {} (owner_id, key) FROM STDIN").format(_qualified(keys_table))) as out:
            out.set_types(["text", "bytea"])
            for row in batch.keys:
                out.write_row(row)
        if batch.aliases:
            with cur.copy(
                SQL("COPY {} (subject_id, owner_id) FROM STDIN").format(_qualified(aliases_table))
            ) as out:
                for row in batch.aliases:
                    out.write_row(row)
        sql = SQL("COPY {}.{} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)")
        with cur.copy(sql.format(Identifier(schema), Identifier(recorder.events_table_name))) as out:
            out.set_types(["uuid", "int8", "text", "bytea"])
            for event in batch.events:
                out.write_row(event)
        if batch.snapshots:
            snapshots: Any = app.snapshots.recorder if app.snapshots is not None else None
            table = Identifier(snapshots.datastore.schema), Identifier(snapshots.events_table_name)
            with cur.copy(sql.format(*table)) as out:
                out.set_types(["uuid", "int8", "text", "bytea"])
                for snapshot in batch.snapshots:
                    out.write_row(snapshot)


def _qualified(name: str) -> Any:
    return Identifier(*name.split("."))


# -- the whole store ----------------------------------------------------------------------


def top_up_funds(app: CityApplication, template: Template, clones: int) -> None:
    """Top up each fund the clones would otherwise overdraw, through the application."""
    from aggregates.fund import Fund
    from services import commands as c

    for fund_id in app.city.config.funds:
        fund_uuid = Fund.create_id(app.key, fund_id)
        need = template.fund_draws.get(fund_uuid, 0) * clones
        fund = app.repository.get(fund_uuid)
        if need <= fund.remaining:
            continue
        proposed = app.execute(
            c.ProposeFundTopUp(
                f"{template.tag}:topup:{fund_id}", fund_id, need, "bulk store seasons", "budget office"
            )
        )
        app.execute(
            c.ApproveFundTopUp(
                f"{template.tag}:approve:{fund_id}",
                fund_id,
                str(proposed["proposal_id"]),
                "decision 1/2026",
                "treasurer",
            )
        )


def build(
    app: CityApplication,
    seasons: int,
    people: int,
    days: int,
    tag: str = "bench0",
    events: int = 0,
    progress: bool = True,
) -> tuple[int, int]:
    """`seasons` seasons of `people` people over `days` days (with `events`, as many seasons
    as make at least that many stored events): the first through the application, the
    others cloned from it. Returns the seasons and the stored events they are."""
    template = build_template(app, tag, people, days)
    if events > 0:
        seasons = max(1, -(-events // template.stored))
    clones = seasons - 1
    top_up_funds(app, template, clones)
    extra = {oid: _version(app, oid) - _last_version(template, oid) for oid in template.shared}
    dsn = _dsn(app)
    written = template.stored
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        for batch in encode(app, template, range(1, seasons), extra):
            copy(conn, app, batch)
            written += len(batch.events)
            if progress:
                so_far = time.perf_counter() - started
                total = seasons * template.stored
                print(
                    f"bulk store: {written} of {total} stored events, {so_far:.0f} s of cloning",
                    file=sys.stderr,
                    flush=True,
                )
    return seasons, written


def _version(app: CityApplication, oid: UUID) -> int:
    events = app.recorder.select_events(oid, desc=True, limit=1)
    return int(events[0].originator_version)


def _last_version(template: Template, oid: UUID) -> int:
    return max(int(e.originator_version) for e in template.events if e.originator_id == oid)


def _dsn(app: CityApplication) -> str:
    env = app.env
    return (
        f"host={env.get('POSTGRES_HOST', '127.0.0.1')} port={env.get('POSTGRES_PORT', '5432')} "
        f"user={env.get('POSTGRES_USER', 'postgres')} dbname={env.get('POSTGRES_DBNAME', 'postgres')}"
        + (f" password={env['POSTGRES_PASSWORD']}" if env.get("POSTGRES_PASSWORD") else "")
    )
