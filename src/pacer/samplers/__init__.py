"""Resource samplers behind ``pacer.ports.ResourceSampler``: the host (psutil) and the simulated
database. Only ``pacer.bootstrap`` picks one."""
