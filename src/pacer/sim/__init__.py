"""The simulated database and its workload: hidden true costs, reproducible traffic, two clocks.

The simulator stands where a real database would: it only gives what a real one gives (the
start and finish of each execution, and closed resource windows), so the estimator and the
pacer are tested on exactly the data they will see in production.
"""
