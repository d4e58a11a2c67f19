"""Upstream choice: smooth weighted round-robin, least-connections, passive health."""

from __future__ import annotations

from collections import Counter

from edgecache.core.balancing import Balancer, Member


def test_smooth_weighted_round_robin_is_proportional_and_interleaved() -> None:
    a, b, c = Member("a", 5), Member("b", 1), Member("c", 1)
    balancer = Balancer([a, b, c])
    picks = [balancer.pick(0.0) for _ in range(7)]
    assert [m.url for m in picks if m] == ["a", "a", "b", "a", "c", "a", "a"]  # nginx's order
    counts = Counter(m.url for m in (balancer.pick(0.0) for _ in range(7000)) if m)
    assert counts == {"a": 5000, "b": 1000, "c": 1000}


def test_least_connections_weighs_members() -> None:
    a, b = Member("a", 1), Member("b", 2)
    balancer = Balancer([a, b], strategy="least-conn")
    a.active, b.active = 1, 1
    assert balancer.pick(0.0) is b  # 1/2 < 1/1
    b.active = 3
    assert balancer.pick(0.0) is a


def test_passive_health_skips_then_readmits() -> None:
    a, b = Member("a"), Member("b")
    balancer = Balancer([a, b], max_fails=2, fail_timeout=10)
    balancer.failed(a, 0.0)
    assert balancer.available(0.5) == [a, b]
    balancer.failed(a, 1.0)
    assert balancer.available(1.0) == [b]
    assert {balancer.pick(2.0) for _ in range(4)} == {b}
    assert balancer.available(11.5) == [a, b]  # back after fail_timeout


def test_failures_outside_the_window_do_not_count() -> None:
    a = Member("a")
    balancer = Balancer([a], max_fails=2, fail_timeout=10)
    balancer.failed(a, 0.0)
    balancer.failed(a, 20.0)
    assert balancer.available(20.0) == [a]


def test_all_down_tries_the_soonest_back_and_exclusion() -> None:
    a, b = Member("a"), Member("b")
    balancer = Balancer([a, b], max_fails=1, fail_timeout=10)
    balancer.failed(a, 0.0)
    balancer.failed(b, 5.0)
    assert balancer.pick(6.0) is a
    assert balancer.pick(6.0, exclude=[a]) is b
    assert balancer.pick(6.0, exclude=[a, b]) is None
