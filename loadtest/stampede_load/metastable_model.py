"""A small model of metastable failure: the fleet's downstream as one FIFO queue with a fixed
capacity, clients with a deadline per attempt, and a retry policy. It predicts, for offered
load stepped up and back down, where goodput collapses (the tipping point) and where it comes
back (the recovery point); the measured map (loadtest/run fleet) is read against it.

The model is a fluid simulation in steps of `dt`: the requests that arrive in a step form one
cohort, which waits in the queue and is served, first come first served, at `capacity` per
second. A cohort served before its deadline is goodput. One whose deadline passes while it
waits is abandoned by its clients, who retry (if the policy lets them), and unless the server
drops work whose caller has gone, it stays in the queue and is still served, for nobody: the
work that keeps a collapsed server collapsed. A full queue turns arrivals away at once, which
the clients retry at once too.

Standard library only."""

import collections
import dataclasses


@dataclasses.dataclass
class Policy:
    """One fleet variant, as the model sees it."""
    name: str
    retries: int = 0             # attempts after the first, per request, for every failure
    budget: float = None         # retries at most this share of first attempts (None: no cap)
    drop_expired: bool = False   # the server skips work whose caller has gone (no cost)
    queue_limit: int = 4000      # the queue turns arrivals away past this many requests


# The fleet's variants (loadtest/stampede_load/fleet.py): retries at three layers compound.
# naive: clients 3, HAProxy 3 on 503/504, replicas 3 per call; the model folds the layers
# into one client that may try 1 + 3 times (the layers' product, 64 attempts, is never
# reached: a deadline passes first).
POLICIES = [
    Policy('naive', retries=3),
    Policy('budget', retries=3, budget=0.10),
    Policy('deadline', retries=3, drop_expired=True, queue_limit=20),
]


@dataclasses.dataclass
class Cohort:
    due: float        # when its clients give up
    size: float       # requests
    attempt: int      # 0: a first attempt
    abandoned: bool = False


@dataclasses.dataclass
class Step:
    offered_pct: float
    offered: float
    goodput: float
    sent: float           # attempts per second, retries included
    queue: float          # requests waiting at the step's end
    leg: str              # 'up' or 'down'


class Model:
    """The queue and its clients; `run(rate, seconds)` advances it, `Step`s come out."""

    def __init__(self, policy, capacity=400.0, deadline=1.0, dt=0.01):
        self.p, self.capacity, self.deadline, self.dt = policy, capacity, deadline, dt
        self.queue = collections.deque()
        self.queued = 0.0
        self.now = 0.0
        self.retry_credit = 0.0   # the budget's allowance not yet spent
        self.pending = []         # (due, size, attempt): retries to send in the next step

    def _retry(self, size, attempt):
        """Retries for `size` failed attempts of `attempt`, as the policy allows."""
        if attempt >= self.p.retries:
            return 0.0
        if self.p.budget is not None:
            size = min(size, self.retry_credit)
            self.retry_credit -= size
        if size > 0:
            self.pending.append((size, attempt + 1))
        return size

    def _arrive(self, size, attempt):
        room = max(0.0, self.p.queue_limit - self.queued)
        taken = min(size, room)
        if taken > 0:
            self.queue.append(Cohort(self.now + self.deadline, taken, attempt))
            self.queued += taken
        if size > taken:  # turned away at once: retried at once
            self._retry(size - taken, attempt)
        return size

    def _tick(self, rate):
        dt = self.dt
        sent = self._arrive(rate * dt, 0)
        if self.p.budget is not None:
            self.retry_credit += self.p.budget * rate * dt
        retries, self.pending = self.pending, []
        for size, attempt in retries:
            sent += self._arrive(size, attempt)
        # Deadlines: cohorts whose clients have given up (the oldest first).
        for c in self.queue:
            if c.due > self.now:
                break
            if not c.abandoned:
                c.abandoned = True
                self._retry(c.size, c.attempt)
        # Service, first come first served.
        budget = self.capacity * dt
        good = 0.0
        while self.queue and budget > 1e-12:
            c = self.queue[0]
            if c.abandoned and self.p.drop_expired:
                self.queue.popleft()
                self.queued -= c.size
                continue
            served = min(c.size, budget)
            budget -= served
            c.size -= served
            self.queued -= served
            if not c.abandoned:
                good += served
            if c.size <= 1e-12:
                self.queue.popleft()
        self.now += dt
        return good, sent

    def run(self, rate, seconds, measure_from=0.5):
        """Offers `rate` for `seconds`; returns (goodput/s, attempts/s) over the last part of
        the step (from `measure_from` of it), once the queue has had time to settle."""
        steps = int(round(seconds / self.dt))
        start = int(steps * measure_from)
        good = sent = 0.0
        for i in range(steps):
            g, s = self._tick(rate)
            if i >= start:
                good += g
                sent += s
        span = (steps - start) * self.dt
        return good / span, sent / span


def ramp(low=30, high=150, step=10, floor=10):
    """Offered load, in percent of capacity: up from `low` to `high`, then back down to
    `floor` (below `low`: a collapsed system may need less load than it started with)."""
    up = list(range(low, high + 1, step))
    down = list(range(high - step, floor - 1, -step))
    return [(pct, 'up') for pct in up] + [(pct, 'down') for pct in down]


def sweep(policy, capacity=400.0, deadline=1.0, seconds=20.0, loads=None):
    """The policy's goodput at each step of the ramp, the model carried from step to step (its
    queue is its history)."""
    m = Model(policy, capacity, deadline)
    out = []
    for pct, leg in loads or ramp():
        rate = capacity * pct / 100.0
        good, sent = m.run(rate, seconds)
        out.append(Step(pct, rate, good, sent, m.queued, leg))
    return out


def points(steps, capacity, share=0.9):
    """(tipping, recovery) in percent of capacity: the first load on the way up whose goodput
    fell below `share` of what it could be (the offered load, at most the capacity), and the
    first on the way down where it is back above; None where there is none. A variant that
    never tips has neither."""
    def healthy(s):
        return s.goodput >= share * min(s.offered, capacity)
    tipping = next((s.offered_pct for s in steps if s.leg == 'up' and not healthy(s)), None)
    if tipping is None:
        return None, None
    down = [s for s in steps if s.leg == 'down']
    recovery = next((s.offered_pct for s in down if healthy(s)), None)
    return tipping, recovery


def main():
    capacity = 400.0
    for p in POLICIES:
        steps = sweep(p, capacity)
        tip, rec = points(steps, capacity)
        loop = ('no loop: never tips' if tip is None else
                'no recovery within the ramp' if rec is None else
                'no loop' if rec >= tip else 'a loop %d points wide' % (tip - rec))
        print('%-9s tipping %s %%, recovery %s %%: %s' % (p.name, tip, rec, loop))
        print('  ' + '  '.join('%s%d:%.0f' % ('^' if s.leg == 'up' else 'v', s.offered_pct,
                                              s.goodput) for s in steps))


if __name__ == '__main__':
    main()
