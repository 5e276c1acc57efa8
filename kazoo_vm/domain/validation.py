"""JSON-schema validation the way Kazoo's ``kz_json_schema`` does it (kz_json_schema:validate,
cb_context:validate_request_data).

* Schemas come from ``schemas/`` (draft-04), referenced by their ``$id`` (``"notify.callback"``).
* Defaults are written into the validated data (jesse ``use_defaults``), so they are stored and returned.
* Non-strict mode: a ``type`` failure on an integer or boolean field is retried with the value cast
  (``"10000"`` → 10000, ``"true"`` → true); string fields are never cast (cb_context ``maybe_fix_js_types``).
* Failures become ``{"<dot.path>": {"<validator>": {"message": ..., ...}}}`` with Kazoo's messages.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

from jsonschema import Draft4Validator, FormatChecker, ValidationError, validators
from referencing import Registry
from referencing.jsonschema import DRAFT4

from kazoo_vm.errors import ValidationFailed
from kazoo_vm.model import JsonDict
from kazoo_vm.resources import schemas_dir

Errors = dict[str, dict[str, dict[str, Any]]]


def _fill_defaults(validator_class: type[Draft4Validator]) -> type[Draft4Validator]:
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties_with_defaults(
        validator: Draft4Validator, properties: JsonDict, instance: Any, schema: JsonDict
    ) -> Iterator[ValidationError]:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    extended: type[Draft4Validator] = validators.extend(  # type: ignore[no-untyped-call]
        validator_class, {"properties": properties_with_defaults}
    )
    return extended


DefaultingValidator = _fill_defaults(Draft4Validator)


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(schemas_dir().glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents.get("id", path.stem), DRAFT4.create_resource(contents)))
    return Registry().with_resources(resources)


@cache
def load_schema(name: str) -> JsonDict:
    schema: JsonDict = _registry().contents(name)
    return schema


@cache
def _validator(name: str) -> Draft4Validator:
    """One validator per schema, built once: the schema files are part of the installed package and never change
    while a process runs (a validator keeps no state between validations)."""
    return DefaultingValidator(load_schema(name), registry=_registry(), format_checker=FormatChecker())


def _path(parts: Any) -> str:
    return ".".join(str(part).replace(".", "%2E") for part in parts)


def _kazoo_error(error: ValidationError) -> tuple[str, str, JsonDict]:
    """``(path, validator, detail)`` for one jsonschema error, in Kazoo's words."""
    path = list(error.absolute_path)
    value = error.instance
    target = error.validator_value
    kind = str(error.validator)
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else str(target)
        return _path([*path, missing]), "required", {"message": "Field is required but missing", "value": missing}
    # Every entry is formatted whatever the error's kind, so none may assume the shape of another keyword's value
    # (oneOf's is a list of schemas).
    types = ", ".join(map(str, target)) if isinstance(target, list) else target
    messages: dict[str, tuple[str, str]] = {
        "type": ("type", f"Value did not match type(s): {types}"),
        "minLength": ("minLength", f"String must be at least {target} characters"),
        "maxLength": ("maxLength", f"String must not be more than {target} characters"),
        "enum": ("enum", "Value not found in enumerated list of values"),
        "format": ("wrong_format", "Field is not in the correct format"),
        "pattern": ("pattern", f"Failed to match pattern '{target}'"),
        "minimum": ("minimum", f"Value must be at least {target}"),
        "maximum": ("maximum", f"Value must be at most {target}"),
        "minItems": ("minItems", f"The list must have at least {target} items"),
        "maxItems": ("maxItems", f"The list is more than {target} items"),
        "uniqueItems": ("uniqueItems", "List of items is not unique"),
        "additionalProperties": (
            "additionalProperties",
            "Strict checking of data is enabled; only include schema-defined properties",
        ),
    }
    key, message = messages.get(kind, (kind, error.message))
    detail: JsonDict = {"message": message, "value": value}
    if kind == "format":
        detail["format"] = target
    else:
        detail["target"] = target
    if kind in ("minLength", "maxLength"):
        detail["cause"] = value
    return _path(path), key, detail


def _cast(value: Any, wanted: Any) -> tuple[bool, Any]:
    types = wanted if isinstance(wanted, list) else [wanted]
    if not isinstance(value, str):
        return False, value
    text = value.strip()
    if "integer" in types:
        try:
            return True, int(text)
        except ValueError:
            pass
    if "boolean" in types and text.lower() in ("true", "false"):
        return True, text.lower() == "true"
    return False, value


def _set_at(instance: Any, path: list[Any], value: Any) -> None:
    target = instance
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def validate(schema_name: str, data: JsonDict, *, extra_errors: Errors | None = None) -> JsonDict:
    """Validate ``data`` against a schema; returns a copy with casts applied and defaults filled in.

    ``extra_errors`` (from module checks such as mailbox uniqueness) are reported together with schema
    errors, since Kazoo continues validating after a module check fails.
    """
    instance = copy.deepcopy(data)
    validator = _validator(schema_name)
    for _attempt in range(32):
        errors = list(validator.iter_errors(instance))
        castable = []
        for error in errors:
            if error.validator == "type":
                ok, cast_value = _cast(error.instance, error.validator_value)
                if ok:
                    castable.append((list(error.absolute_path), cast_value))
        if not castable:
            break
        for path, cast_value in castable:
            if path:
                _set_at(instance, path, cast_value)
    problems: Errors = copy.deepcopy(extra_errors) if extra_errors else {}
    for error in errors:
        field_path, key, detail = _kazoo_error(error)
        problems.setdefault(field_path, {})[key] = detail
    if problems:
        raise ValidationFailed(problems)
    return instance
