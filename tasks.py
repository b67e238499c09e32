"""tfforge's tasks for `invoke` in a checkout: the same tasks the installed `tfforge` command
runs (tfforge/cli.py builds them from tfforge/data/options.toml).

Run `invoke --list` for the tasks and `invoke --help TASK` for their flags.
"""

from tfforge.commands.runner import quit_on_interrupt

quit_on_interrupt()

from tfforge.cli import namespace  # noqa: E402

ns = namespace()
