"""``python -m auditft``: the CLI, also for launchers (``torchrun -m auditft run SUITE``)."""

from auditft.cli import main

main()
