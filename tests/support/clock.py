"""A clock that moves only when a test moves it (``clock.now += 60``)."""


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now
