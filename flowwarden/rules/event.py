"""The read-only event a rule sees, with Panther's accessors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowwarden.rules import jsonpath
from flowwarden.rules.datamodel import DataModel
from flowwarden.rules.immutable import ImmutableCaseInsensitiveDict, adopt, freeze, thaw

NO_DATA_MODEL = "a data model hasn't been specified for log type"
# Where a test event carries the rows `event.lookup` returns when no lookup function is set:
# {table: {key: row}}, the name Panther's test tool reads.
MOCKED_LOOKUP_DATA = "_mocked_lookup_data_"
LookupFunction = Callable[[str, Any], Any]  # (table, key) -> the row, or None


class NoDataModelError(Exception):
    """``udm_path`` on an event whose log type has no data model (Panther raises too)."""


class PantherEvent(ImmutableCaseInsensitiveDict):
    """An event with `get`, `deep_get`, `deep_walk`, `udm` and `udm_path`, as Panther rules
    expect; keys are found whatever their case.

    >>> PantherEvent({"a": {"b": 1}}).deep_get("A", "b")
    1
    """

    __slots__ = ("data_model", "lookup_function")

    def __init__(self, data: Mapping[str, Any], data_model: DataModel | None = None,
                 lookup_function: LookupFunction | None = None) -> None:
        super().__init__(data)
        self.data_model = data_model
        self.lookup_function = lookup_function

    def lookup(self, lookup_name: str, lookup_key: Any) -> Any:
        """Panther's ``event.lookup``: the row of lookup table ``lookup_name`` whose primary key
        matches ``lookup_key`` (for a CIDR table, the longest network containing it), or None.

        In a scan the engine's lookup function answers, from the tables it loaded (a table not
        loaded for this scan answers None); in a rule test there is none, and the event's own
        ``_mocked_lookup_data_`` does, as in Panther's test tool:

        >>> event = PantherEvent({MOCKED_LOOKUP_DATA: {"tor": {"1.2.3.4": {"ip": "1.2.3.4"}}}})
        >>> event.lookup("tor", "1.2.3.4")["ip"], event.lookup("tor", "5.6.7.8")
        ('1.2.3.4', None)
        >>> PantherEvent({}, lookup_function=lambda t, k: {"t": t, "k": k}).lookup("x", "1")
        ImmutableCaseInsensitiveDict({'t': 'x', 'k': '1'})
        """
        if self.lookup_function is not None:
            return freeze(self.lookup_function(lookup_name, lookup_key))
        return self.deep_get(MOCKED_LOOKUP_DATA, lookup_name, lookup_key)

    def deep_walk(self, *keys: str, default: Any = None, return_val: str = "all") -> Any:
        """Panther's ``PantherEvent.deep_walk``: ``deep_get`` that also walks into lists.

        It reads the raw record, so keys match exactly (unlike ``get``). Through a list, every
        item's value counts (``default`` for an item without the key), lists among them are
        flattened, duplicates dropped; one value left is returned alone, several as a list
        (``return_val`` "first" or "last" picks one). A value reached without passing a list
        comes back whole, whatever ``return_val``. Containers come back as plain, mutable
        copies, as Panther's do.
        """
        return thaw(_deep_walk(self.raw_view(), keys, default, return_val))

    def udm(self, *key: str, default: Any = None) -> Any:
        """A data-model field by its common name; falls back to the raw key(s)."""
        if len(key) == 1 and self.data_model is not None:
            found, value = self.data_model.resolve(self, key[0])
            if found:
                return default if value is None else freeze(value)
        return self.deep_get(*key, default=default)

    def udm_value(self, keys: tuple[str, ...]) -> Any:
        """The value at a data-model path of plain keys: exact names only, as Panther's data
        models look paths up (the event's own keys are found in any case); None if absent."""
        value: Any = self.raw_view()
        for key in keys:
            if isinstance(value, ImmutableCaseInsensitiveDict):
                value = value.raw_view()
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    def udm_path(self, key: str) -> str | None:
        """Where the data-model name ``key`` is read from in this event: the matched path as
        Panther prints it (``a.b``, ``a.list.[0].c``), or the name of the method that computes
        it; None when the path matches nothing or ``key`` is not mapped. Raises
        ``NoDataModelError`` when the event's log type has no data model, as Panther does."""
        if self.data_model is None:
            raise NoDataModelError(f"{NO_DATA_MODEL} {self.raw_view().get('p_log_type')}")
        mapping = self.data_model.mappings.get(key)
        if mapping is None:
            return None
        if mapping.path is not None:
            matches = jsonpath.find_paths(self.raw_view(), mapping.path)
            if not matches:
                return None
            if len(matches) > 1:
                raise ValueError(f"JSONPath [{mapping.path}] in DataModel [{self.data_model.id}]"
                                 ", matched multiple fields.")
            return matches[0]
        method = getattr(self.data_model.module, mapping.method or "", None)
        return getattr(method, "__name__", repr(method)) if callable(method) else None


def _deep_walk(value: Any, keys: Sequence[str], default: Any, return_val: str) -> Any:
    if not keys:
        return default if value is None or _empty_list(value) else value
    if isinstance(value, Mapping):
        # A missing key continues with ``default`` as the value, as Panther's does.
        return _deep_walk(value.get(keys[0], default), keys[1:], default, return_val)
    found: dict[Any, None] = {}  # ordered and distinct; unhashable values raise, as Panther's
    if _is_list(value):
        for item in value:
            walked = _deep_walk(item, keys, default, return_val)
            if walked is None:
                continue
            for each in walked if _is_list(walked) else (walked,):
                found[each] = None
    values = list(found)
    if not values:
        return default
    # An unknown ``return_val`` gives the text "all": Panther's own lookup does.
    return {"first": values[0], "last": values[-1],
            "all": values[0] if len(values) == 1 else values}.get(return_val, "all")


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _empty_list(value: Any) -> bool:
    """A list with nothing but (nested) empty lists in it."""
    return _is_list(value) and all(_empty_list(item) for item in value)


adopt("panther_core.enriched_event", "PantherEvent", PantherEvent)
