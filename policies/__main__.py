"""`python -m policies` (`just policies`): the built-in policies, their options and defaults.

Reads the policy classes only: nothing a policy loads when it is configured (the judge's
litellm) is imported.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from interlock.config import PolicyEntry
from policies.registry import describe_policies


def render() -> Group:
    parts: list[Table | Panel | Text] = []
    for policy in describe_policies():
        table = Table(show_header=True, header_style="bold", expand=True, box=None, padding=(0, 2))
        table.add_column("option", style="cyan", no_wrap=True)
        table.add_column("type", style="magenta")
        table.add_column("default")
        for option in policy.options:
            table.add_row(option.name, Text(option.type), Text(option.default))
        if not policy.options:
            table.add_row("-", "-", "-")
        parts.append(Panel(table, title=f"[bold]{policy.name}[/]", subtitle=policy.description, title_align="left"))
    common = ", ".join(
        f"{key} (default {field.default!r})" for key, field in PolicyEntry.model_fields.items() if key != "policy"
    )
    parts.append(
        Text(
            f"Every entry of `policies:` also takes {common}. "
            "A policy of your own is named by import path: `package.module:Class`. See docs/policies.md.",
            style="dim",
        )
    )
    return Group(*parts)


def main() -> None:
    Console().print(render())


if __name__ == "__main__":
    main()
