# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of the Kubernetes values the renderers take: types, quantities, names, label keys and values.

Nothing here knows about GPUs. Every problem is reported as :class:`GpuSpecError`, a ``ValueError`` whose
message starts with the name of the offending argument (the renderers' error contract, see docs/filters.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from decimal import Decimal, InvalidOperation

from collections.abc import Mapping

_QUANTITY_RE = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DIGITS_RE = re.compile(r"^[0-9]+$")

_BINARY_SUFFIXES = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL_SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1, "k": 10 ** 3,
                     "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18}


class GpuSpecError(ValueError):
    """Raised for invalid arguments or conflicting input. The message names the argument."""


def type_name(value):
    """A YAML-flavoured name for the type of ``value`` used in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def describe(value):
    return "%s %r" % (type_name(value), value) if not isinstance(value, (Mapping, list, tuple)) else type_name(value)


def plain(value):
    """Deep copy ``value`` into plain ``dict``/``list``/``str`` objects (tagged subclasses become plain)."""
    if isinstance(value, Mapping):
        return dict((plain(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str) and type(value) is not str:  # pylint: disable=unidiomatic-typecheck
        return str(value)
    return value


def require_mapping(value, name):
    if not isinstance(value, Mapping):
        raise GpuSpecError("%s: expected a mapping, got %s" % (name, describe(value)))
    return value


def require_list(value, name):
    if not isinstance(value, (list, tuple)):
        raise GpuSpecError("%s: expected a list, got %s" % (name, describe(value)))
    return value


def require_string(value, name, allow_empty=False):
    if not isinstance(value, str):
        raise GpuSpecError("%s: expected a string, got %s" % (name, describe(value)))
    if not allow_empty and not value:
        raise GpuSpecError("%s: expected a non-empty string" % name)
    return value


def require_bool(value, name):
    if not isinstance(value, bool):
        raise GpuSpecError("%s: expected a boolean (true/false), got %s" % (name, describe(value)))
    return value


def int_arg(value, name, minimum=0):
    """Accept an int (not a bool) or a string of decimal digits; return an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise GpuSpecError("%s: expected a non-negative integer, got %s" % (name, describe(value)))
    if isinstance(value, str):
        if not _DIGITS_RE.match(value):
            raise GpuSpecError("%s: expected a non-negative integer, got string %r" % (name, value))
        value = int(value)
    if value < minimum:
        raise GpuSpecError("%s: expected an integer >= %d, got %d" % (name, minimum, value))
    return value


def check_dns1123_label(value, name):
    require_string(value, name)
    if len(value) > 63 or not _DNS1123_LABEL_RE.match(value):
        raise GpuSpecError("%s: %r is not a valid DNS-1123 label (lower-case alphanumerics and '-', at most 63 characters)" % (name, value))
    return value


def check_dns1123_subdomain(value, name):
    require_string(value, name)
    if len(value) > 253 or not all(_DNS1123_LABEL_RE.match(part) for part in value.split(".")):
        raise GpuSpecError("%s: %r is not a valid DNS-1123 subdomain (lower-case alphanumerics, '-' and '.')" % (name, value))
    return value


def check_label_key(value, name):
    require_string(value, name)
    prefix, _sep, label = value.rpartition("/")
    if (prefix and len(prefix) > 253) or (prefix and not all(_DNS1123_LABEL_RE.match(p) for p in prefix.split("."))):
        raise GpuSpecError("%s: %r has an invalid prefix (expected a DNS subdomain before '/')" % (name, value))
    if len(label) > 63 or not _LABEL_NAME_RE.match(label):
        raise GpuSpecError("%s: %r is not a valid label or annotation key" % (name, value))
    return value


def string_map(value, name, check_values=True):
    """Validate a mapping of label keys to string values (node selectors, labels)."""
    require_mapping(value, name)
    for key, val in value.items():
        check_label_key(key, "%s key" % name)
        if not isinstance(val, str):
            raise GpuSpecError("%s[%r]: expected a string value, got %s (quote it in YAML)" % (name, key, describe(val)))
        if check_values and (len(val) > 63 or not _LABEL_VALUE_RE.match(val)):
            raise GpuSpecError("%s[%r]: %r is not a valid label value" % (name, key, val))
    return value


def parse_quantity(value, name):
    """Parse a Kubernetes quantity (``8Gi``, ``500m``, ``1e3``, ``2``) into a ``Decimal``.

    Integers are taken as plain numbers. Raises :class:`GpuSpecError` naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise GpuSpecError("%s: expected a Kubernetes quantity such as '8Gi' or '500m', got %s" % (name, describe(value)))
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QUANTITY_RE.match(value)
    if not match:
        raise GpuSpecError("%s: %r is not a Kubernetes quantity (expected e.g. '8Gi', '512Mi', '1.5', '500m')" % (name, value))
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the regex only lets decimals through
        raise GpuSpecError("%s: %r is not a Kubernetes quantity" % (name, value))
    if suffix in _BINARY_SUFFIXES:
        return base * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return base * Decimal(_DECIMAL_SUFFIXES[suffix])
    return base * (Decimal(10) ** int(suffix[1:]))


def memory_quantity(value, name):
    """Validate a positive memory quantity; return ``(string form, bytes as Decimal)``."""
    if isinstance(value, str) and value[-1:] in ("m", "u", "n"):
        raise GpuSpecError("%s: %r uses a sub-unit suffix; memory needs bytes (e.g. '8Gi', '512Mi')" % (name, value))
    amount = parse_quantity(value, name)
    if isinstance(value, float):
        raise GpuSpecError("%s: expected a quantity string such as '8Gi' or an integer number of bytes, got float %r" % (name, value))
    if amount <= 0:
        raise GpuSpecError("%s: expected a positive quantity, got %r" % (name, value))
    return str(value), amount


def cpu_quantity(value, name):
    """Validate a positive CPU amount (``2``, ``0.5``, ``"500m"``); return ``(k8s form, cores as Decimal)``."""
    amount = parse_quantity(value, name)
    if (isinstance(value, str) and value[-1:] in ("n", "u")) or amount <= 0:
        raise GpuSpecError("%s: expected a positive number of cores such as 2, 0.5 or '500m', got %r" % (name, value))
    if isinstance(value, str):
        return value, amount
    return str(value) if isinstance(value, float) else value, amount


def is_digits(value):
    """True for a string of decimal digits (an integer count written as text)."""
    return isinstance(value, str) and bool(_DIGITS_RE.match(value))


def is_label_value(value):
    """True for a valid label value (at most 63 characters)."""
    return isinstance(value, str) and len(value) <= 63 and bool(_LABEL_VALUE_RE.match(value))


def check_dns1035_label(value, name):
    require_string(value, name)
    if len(value) > 63 or not _DNS1035_LABEL_RE.match(value):
        raise GpuSpecError("%s: %r is not a valid DNS-1035 label (start with a letter; lower-case alphanumerics and '-'; "
                           "at most 63 characters)" % (name, value))
    return value
