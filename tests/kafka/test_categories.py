"""A spend projected before its merchant's registration still counts under the merchant's category."""

from __future__ import annotations

from pathlib import Path

from projections.integration import to_integration_event
from projections.projector import Delivery, Projector
from projections.store import Store
from services.city import CityApplication
from services.settings.cities import load_city, load_settings
from tests.kafka.activity import exact_by_key, season


def deliveries(app: CityApplication, city: str) -> list[Delivery]:
    rows = app.recorder.select_notifications(start=0, limit=100_000)
    out = []
    for n in rows:
        event = to_integration_event(city, n.id, app.mapper.to_domain_event(n), app.pseudonym)
        if event is not None:
            out.append(Delivery(0, n.id, event, n.id))
    return out


def renumbered(part: int, batch: list[Delivery]) -> list[Delivery]:
    """The deliveries as consecutive offsets of one partition."""
    return [Delivery(part, i + 1, d.event, d.notification_id) for i, d in enumerate(batch)]


def test_category_is_resolved_when_the_dashboard_is_read(tmp_path: Path) -> None:
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    app = CityApplication(load_city("bologna"), settings.eventsourcing_env("bologna"))
    season(app, "cat", people=24, days=1)  # 12 people spend 1 token each at one "food" shop
    events = deliveries(app, "bologna")
    app.close()
    registered = [d for d in events if d.event is not None and d.event.type == "Merchant.Registered"]
    assert len(registered) == 1

    # As Kafka may deliver it: the merchant's partition arrives after every spend.
    late = Projector(Store(f"sqlite:///{tmp_path / 'late.sqlite'}"))
    for part, batch in enumerate(([d for d in events if d not in registered], registered)):
        late.apply_batch(
            "reordered", [Delivery(part, i + 1, d.event, d.notification_id) for i, d in enumerate(batch)]
        )
    in_order = Projector(Store(f"sqlite:///{tmp_path / 'ordered.sqlite'}"))
    in_order.apply_batch(
        "ordered", [Delivery(0, i + 1, d.event, d.notification_id) for i, d in enumerate(events)]
    )

    for projector in (late, in_order):
        with projector.store.transaction() as tx:
            assert exact_by_key(tx, "bologna", "spent_by_category") == {"food": (12, 12)}
