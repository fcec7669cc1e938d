"""SQL shipped as package data in tracekit/sql, loaded by name."""

from functools import cache
from importlib import resources


@cache
def load(name: str, package: str = "tracekit") -> str:
    """The text of PACKAGE/sql/NAME.sql (NAME may hold a folder: `report/shifts`)."""
    return resources.files(package).joinpath("sql", f"{name}.sql").read_text("utf-8")


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration, in order."""
    folder = resources.files("tracekit").joinpath("sql", "migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text("utf-8")))
    return sorted(found)
