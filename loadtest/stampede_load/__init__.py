"""stampede's load tests: the scenarios and lessons that loadtest/run drives (scenarios,
lessons, failure_labs, adaptive, fleet_experiments), their report (report, wrkparse,
promtext), and the lab they run in (lab: the model, the server under a memory limit and its
supervisor, the sampler, the load generators; lab.serve is scripts/serve)."""
