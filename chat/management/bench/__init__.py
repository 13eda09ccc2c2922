"""`manage.py chatbench`'s parts: the servers it starts (`servers`), the load
generator it drives them with (`loadgen`, one module per workload, on `core`)."""
