"""``python -m maas_gateway`` is the ``maas`` command."""

from maas_gateway.cli.main import main

main()
