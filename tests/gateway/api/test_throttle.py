from gateway.api.throttle import FailureThrottle

from tests.support.clock import Clock


def test_blocks_after_limit_failures_within_the_window():
    clock = Clock()
    throttle = FailureThrottle(3, 60, clock=clock)
    for _ in range(2):
        throttle.record_failure(["ip:a"])
    assert throttle.retry_after(["ip:a"]) == 0
    clock.now += 10
    throttle.record_failure(["ip:a"])
    assert throttle.retry_after(["ip:a"]) == 50
    assert throttle.retry_after(["ip:b"]) == 0


def test_unblocks_when_the_oldest_failure_ages_out():
    clock = Clock()
    throttle = FailureThrottle(2, 60, clock=clock)
    throttle.record_failure(["user:x"])
    clock.now += 30
    throttle.record_failure(["user:x"])
    clock.now += 30
    assert throttle.retry_after(["user:x"]) == 0
    throttle.record_failure(["user:x"])
    assert throttle.retry_after(["user:x"]) == 30


def test_any_blocked_key_blocks():
    throttle = FailureThrottle(1, 60, clock=Clock())
    throttle.record_failure(["user:x"])
    assert throttle.retry_after(["ip:new", "user:x"]) == 60


def test_memory_is_bounded():
    throttle = FailureThrottle(5, 60, max_keys=100, clock=Clock())
    for i in range(1000):
        throttle.record_failure([f"ip:{i}"])
    assert len(throttle._failures) == 100


def test_failed_within_the_window_only():
    clock = Clock()
    throttle = FailureThrottle(3, 60, clock=clock)
    assert not throttle.failed("client:a")
    throttle.record_failure(["client:a"])
    assert throttle.failed("client:a") and not throttle.failed("client:b")
    clock.now += 60
    assert not throttle.failed("client:a")
