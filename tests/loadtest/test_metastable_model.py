"""The metastability model (stampede_load/metastable_model.py): what it predicts for the
fleet's variants when offered load is ramped up past capacity and back down."""

import unittest

from stampede_load import metastable_model as mm

CAPACITY = 400.0


class MetastableModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.steps = {p.name: mm.sweep(p, CAPACITY) for p in mm.POLICIES}
        cls.points = {name: mm.points(s, CAPACITY) for name, s in cls.steps.items()}

    def test_naive_retries_tip_past_capacity_and_recover_far_below_it(self):
        tip, rec = self.points['naive']
        self.assertIsNotNone(tip)
        self.assertGreaterEqual(tip, 100)
        self.assertIsNotNone(rec)
        # Four attempts per request keep the queue full until the load falls below a quarter.
        self.assertLessEqual(rec, 25)
        # The collapsed state is stable: no goodput at all at loads that were fine going up.
        for s in self.steps['naive']:
            if s.leg == 'down' and 30 <= s.offered_pct <= 90:
                self.assertLess(s.goodput, 0.1 * s.offered, s)

    def test_a_retry_budget_narrows_the_loop_and_dropping_expired_work_removes_it(self):
        naive_tip, naive_rec = self.points['naive']
        tip, rec = self.points['budget']
        self.assertIsNotNone(rec)
        self.assertLess(tip - rec, naive_tip - naive_rec)
        self.assertEqual(self.points['deadline'], (None, None))
        for s in self.steps['deadline']:
            self.assertAlmostEqual(s.goodput, min(s.offered, CAPACITY), delta=0.02 * CAPACITY)

    def test_goodput_never_exceeds_the_capacity_or_the_attempts_sent(self):
        # (It may exceed the offered load for a while: retries of requests sent earlier that
        # succeed once the backlog has cleared.)
        for name, steps in self.steps.items():
            for s in steps:
                self.assertLessEqual(s.goodput, CAPACITY * 1.001, (name, s))
                self.assertLessEqual(s.goodput, s.sent * 1.001, (name, s))
                self.assertGreaterEqual(s.sent, s.offered * 0.999, (name, s))

    def test_the_ramp_goes_up_past_capacity_and_further_down_than_it_started(self):
        loads = mm.ramp()
        self.assertEqual(loads[0], (30, 'up'))
        self.assertIn((150, 'up'), loads)
        self.assertEqual(loads[-1], (10, 'down'))


if __name__ == '__main__':
    unittest.main()
