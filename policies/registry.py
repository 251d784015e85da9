"""Finds policy classes by short name or import path and builds a validated chain.

Every problem is reported as a `ConfigError` naming the entry and the key, e.g.
`policies.1 (deny_tools).rules.0.pattern: ...`.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from interlock.config import ConfigError, PolicyEntry, describe_validation_error
from interlock.policy.base import Policy
from interlock.policy.chain import ChainedPolicy, PolicyChain
from policies.builtin.budget import BudgetPolicy
from policies.builtin.deny_tools import DenyToolsPolicy
from policies.builtin.model_rewrite import ModelRewritePolicy
from policies.builtin.redact import RedactPolicy
from policies.builtin.replace import ReplacePolicy
from policies.builtin.system_prompt import SystemPromptPolicy

BUILTIN: dict[str, str] = {
    cls.name: f"{cls.__module__}:{cls.__name__}"
    for cls in (ReplacePolicy, RedactPolicy, DenyToolsPolicy, ModelRewritePolicy, SystemPromptPolicy, BudgetPolicy)
}
# Policies whose module is heavy (litellm) are imported only when configured.
BUILTIN["tool_call_judge"] = "policies.builtin.tool_call_judge:ToolCallJudgePolicy"
BACKSTOP_MARGIN_S = 0.5


def resolve(reference: str) -> type[Policy]:
    """A policy class from a short name, `package.module:Class` or `package.module.Class`."""
    target = BUILTIN.get(reference, reference)
    module_name, sep, class_name = target.partition(":")
    if not sep:
        module_name, _, class_name = target.rpartition(".")
    if not module_name or not class_name:
        raise ValueError(f"unknown policy {reference!r}; built-in policies: {', '.join(sorted(BUILTIN))}")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - a user's module may fail in any way at import
        raise ValueError(f"cannot import {module_name!r} for policy {reference!r}: {error!r}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise TypeError(f"{target!r} is not a Policy subclass")
    return cls


def build_chain(entries: list[PolicyEntry]) -> PolicyChain:
    chained: list[ChainedPolicy] = []
    names: dict[str, int] = {}
    for position, entry in enumerate(entries):
        where = f"policies.{position} ({entry.policy})"
        try:
            cls = resolve(entry.policy)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{where}.policy: {error}") from None
        # A policy that handles its own failures (the judge) declares `on_error` and
        # `timeout_s` among its options and gets the entry's values; the chain's bound is
        # then only a backstop, a little later than the policy's own.
        shared = {key: getattr(entry, key) for key in ("on_error", "timeout_s") if key in cls.Options.model_fields}
        bound_s = entry.timeout_s + (BACKSTOP_MARGIN_S if "timeout_s" in shared else 0.0)
        try:
            options = cls.Options.model_validate({**entry.options, **shared})
        except ValidationError as error:
            raise ConfigError(describe_validation_error(error, prefix=f"{where}.")) from None
        base = cls.name or cls.__name__
        names[base] = names.get(base, 0) + 1
        instance_name = base if names[base] == 1 else f"{base}#{names[base]}"
        try:
            policy = cls(options, instance_name)
        except (ValueError, TypeError, OSError) as error:
            raise ConfigError(f"{where}: {error}") from None
        chained.append(ChainedPolicy(policy, entry.on_error, bound_s))
    return PolicyChain(chained)


class OptionDescription(BaseModel):
    name: str
    type: str
    default: str  # "(required)" when the option has no default


class PolicyDescription(BaseModel):
    name: str
    description: str
    options: list[OptionDescription]


def describe_policies() -> list[PolicyDescription]:
    """Name, description and options (with defaults) of every built-in policy. Nested
    option models (e.g. `replace`'s rules) are listed field by field as `rules[].find`.
    Describing imports each policy's module, never what it loads when constructed (the
    judge's litellm)."""
    result = []
    for name in sorted(BUILTIN):
        try:
            cls = resolve(name)
        except (ValueError, TypeError) as error:
            result.append(PolicyDescription(name=name, description=f"unavailable: {error}", options=[]))
            continue
        result.append(PolicyDescription(name=name, description=cls.description, options=_describe_options(cls.Options)))
    return result


def _describe_options(model: type[BaseModel], prefix: str = "") -> list[OptionDescription]:
    options = []
    for key, field in model.model_fields.items():
        nested = _nested_models(field.annotation)
        if field.is_required():
            default = "(required)"
        elif nested:
            default = "(see its fields)"
        else:
            default = repr(field.get_default(call_default_factory=True))
        options.append(OptionDescription(name=prefix + key, type=_type_name(field.annotation), default=default))
        inner = f"{prefix}{key}[]." if get_origin(field.annotation) is list else f"{prefix}{key}."
        for sub in nested:
            options += _describe_options(sub, inner)
    return options


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _nested_models(arg)]


def _type_name(annotation: Any) -> str:
    """`list[Rule]` rather than `list[policies.builtin.replace.Rule]`."""
    if isinstance(annotation, type) and not get_args(annotation):
        return annotation.__name__
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", str(annotation))
