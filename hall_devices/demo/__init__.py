"""The demo: `hall-devices up` (the whole hall on simulated devices), the traffic generator and the
device simulators (sim/), each with its fault switches."""
