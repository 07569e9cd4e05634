"""Pure routing: buckets, the pick table, sticky keys and the lease switch."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from modelshift.gateway.routing import (
    BUCKETS,
    Plan,
    bucket,
    choose,
    key_hash,
    pick,
    serving_plan,
    sticky_key,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
P, C = "sha256:prod", "sha256:canary"


@pytest.mark.parametrize(
    ("weights", "slot", "first", "expected"),
    [
        ({P: 100}, 0, None, P),
        ({P: 100}, 99, None, P),
        ({P: 75, C: 25}, 0, C, C),  # the canary takes the low buckets
        ({P: 75, C: 25}, 24, C, C),  # last canary bucket
        ({P: 75, C: 25}, 25, C, P),  # first production bucket
        ({P: 75, C: 25}, 99, C, P),
        ({P: 0, C: 100}, 50, C, C),  # zero weights never serve
        ({P: 95, C: 5}, 4, C, C),
        ({P: 95, C: 5}, 5, C, P),
        ({}, 0, None, None),
        ({P: 50, C: 40}, 95, None, P),  # a bad sum (refused on write) still serves someone: the last
    ],
)
def test_pick_table(weights: dict[str, int], slot: int, first: str | None, expected: str | None) -> None:
    assert pick(weights, slot, first=first) == expected


def test_bucket_is_stable_per_app_and_key_and_in_range() -> None:
    assert bucket("shop", "alice") == bucket("shop", "alice")
    slots = {bucket("shop", f"user-{i}") for i in range(2000)}
    assert min(slots) >= 0 and max(slots) < BUCKETS
    assert len(slots) == BUCKETS  # every bucket reachable
    # the app is part of the hash: a user is not on the same bucket in every app
    assert sum(bucket("shop", f"u{i}") == bucket("hr", f"u{i}") for i in range(500)) < 50


def test_no_key_routes_randomly() -> None:
    assert len({bucket("shop", None) for _ in range(500)}) > 50


@pytest.mark.parametrize("weight", [5, 25, 50])
def test_thousand_sessions_land_within_tolerance(weight: int) -> None:
    plan = Plan({P: 100 - weight, C: weight}, C, False)
    counts = Counter(choose("shop", plan, f"session-{i}") for i in range(1000))
    # binomial sd at 1000 draws is at most 1.6 points; 5 points is > 3 sd
    assert abs(counts[C] / 1000 * 100 - weight) <= 5


def test_raising_the_weight_only_moves_users_to_the_canary() -> None:
    keys = [f"k{i}" for i in range(1000)]
    before = {k: choose("shop", Plan({P: 95, C: 5}, C, False), k) for k in keys}
    after = {k: choose("shop", Plan({P: 75, C: 25}, C, False), k) for k in keys}
    assert not [k for k in keys if before[k] == C and after[k] == P]


@pytest.mark.parametrize(
    ("user", "session", "expected"),
    [("alice", "s1", "alice"), (None, "s1", "s1"), ("", "s1", "s1"), (None, None, None), ("", "", None)],
)
def test_sticky_key_prefers_user(user: str | None, session: str | None, expected: str | None) -> None:
    assert sticky_key(user, session) == expected


def test_key_hash_is_short_stable_and_not_the_key() -> None:
    assert key_hash("alice") == key_hash("alice") != key_hash("bob")
    assert "alice" not in key_hash("alice") and len(key_hash("alice")) == 16


@pytest.mark.parametrize(
    ("weights", "lease", "production", "expected"),
    [
        # no lease: stored weights
        ({P: 75, C: 25}, None, P, Plan({P: 75, C: 25}, C, False)),
        # lease in the future: stored weights
        ({P: 75, C: 25}, NOW + timedelta(seconds=1), P, Plan({P: 75, C: 25}, C, False)),
        # lease ends exactly now: lapsed
        ({P: 75, C: 25}, NOW, P, Plan({P: 100}, None, True)),
        ({P: 75, C: 25}, NOW - timedelta(hours=1), P, Plan({P: 100}, None, True)),
        # production alone with a stale lease: nothing to switch off
        ({P: 100}, NOW - timedelta(hours=1), P, Plan({P: 100}, None, False)),
        # lapsed, but no production bundle to fall back to: keep serving what is stored
        ({C: 100}, NOW - timedelta(hours=1), None, Plan({C: 100}, None, False)),
        # zero weights are dropped
        ({P: 100, C: 0}, None, P, Plan({P: 100}, None, False)),
        # naive lease timestamps are UTC
        ({P: 50, C: 50}, datetime(2026, 3, 1, 11, 0), P, Plan({P: 100}, None, True)),
    ],
)
def test_serving_plan_table(
    weights: dict[str, int], lease: datetime | None, production: str | None, expected: Plan
) -> None:
    assert serving_plan(weights, lease, production, NOW) == expected
