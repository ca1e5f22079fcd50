"""The few hand-written SQL statements of the hot paths share one way to read their rows back as models.

A hot path (token authentication, the decision's locked read, the ingest's point
lookup) selects the concrete columns of several models side by side in one
statement because compiling the ORM query would cost more than running it. A
``RowShape`` is built once per database alias: the column list (with each model's
table alias), and the converters Django would apply; ``load_row`` turns a fetched
row into model instances exactly as the ORM would (``Model.from_db``), plus any
extra values selected after the models' columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import connections, models


@dataclass(frozen=True)
class RowShape:
    """Models selected side by side: ``(model, table alias, attnames)`` each, the SQL column list, the converters."""

    parts: tuple[tuple[type[models.Model], str, tuple[str, ...]], ...]
    columns: str
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]

    def names_of(self, model: type[models.Model]) -> tuple[str, ...]:
        """The attnames selected for ``model`` (its concrete fields, in column order)."""
        return next(names for part_model, _, names in self.parts if part_model is model)


def concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """``model``'s field ``name`` (``"pk"``: its primary key) when it has a database column.

    Not a reverse relation or a virtual field: those have no column to select or update.
    """
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise FieldDoesNotExist(f"{model._meta.label}.{name} has no database column")
    return field


def field_column(field: models.Field[Any, Any]) -> str:
    """A concrete field's database column, unquoted (``Field.column`` is None only for fields without one)."""
    if field.column is None:
        raise FieldDoesNotExist(f"{field} has no database column")
    return field.column


def column_of(model: type[models.Model], name: str = "pk") -> str:
    """The database column of ``model``'s field ``name`` (of its primary key by default), unquoted."""
    return field_column(concrete_field(model, name))


def row_shape(alias: str, *parts: tuple[Any, ...]) -> RowShape:
    """The shape of ``SELECT <concrete columns of each (model, table alias[, field names left out])>`` on ``alias``.

    Left-out fields are deferred on the loaded instances (read on first access).
    """
    conn = connections[alias]
    qn = conn.ops.quote_name
    shaped: list[tuple[type[models.Model], str, tuple[str, ...]]] = []
    columns: list[str] = []
    converters: list[tuple[int, tuple[Any, ...], Any]] = []
    for part in parts:
        model, table_alias = part[0], part[1]
        left_out = frozenset(part[2]) if len(part) > 2 else frozenset()
        fields = [f for f in model._meta.concrete_fields if f.name not in left_out]
        shaped.append((model, table_alias, tuple(f.attname for f in fields)))
        for field in fields:
            col = field.get_col(table_alias)
            funcs = tuple(conn.ops.get_db_converters(col) + col.get_db_converters(conn))
            if funcs:
                converters.append((len(columns), funcs, col))
            columns.append(f"{table_alias}.{qn(field.column)}")
    return RowShape(parts=tuple(shaped), columns=", ".join(columns), converters=tuple(converters))


def load_row(shape: RowShape, alias: str, raw: tuple[Any, ...]) -> tuple[list[models.Model], list[Any]]:
    """``(one instance per part, the extra values after the models' columns)`` from a fetched row."""
    conn = connections[alias]
    row = list(raw)
    for index, funcs, col in shape.converters:
        for func in funcs:
            row[index] = func(row[index], col, conn)
    instances: list[models.Model] = []
    start = 0
    for model, _, names in shape.parts:
        end = start + len(names)
        instances.append(model.from_db(alias, list(names), row[start:end]))
        start = end
    return instances, row[start:]
