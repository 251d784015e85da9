"""`model_rewrite`: map requested model names to others (e.g. force a cheaper model)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from pydantic import Field

from interlock.policy.base import Policy, PolicyContext, PolicyOptions


class ModelRewriteOptions(PolicyOptions):
    map: dict[str, str] = Field(min_length=1)  # requested model (glob) -> model to use


class ModelRewritePolicy(Policy):
    name = "model_rewrite"
    Options = ModelRewriteOptions
    description = "Rewrite the requested model name (exact names or globs)."
    options: ModelRewriteOptions

    def target(self, model: str) -> str | None:
        if model in self.options.map:
            return self.options.map[model]
        for pattern, target in self.options.map.items():
            if fnmatchcase(model, pattern):
                return target
        return None

    async def on_request(self, ctx: PolicyContext, request: dict[str, Any]) -> dict[str, Any]:
        model = ctx.dialect.request_model(request)
        if model is None:
            return request
        target = self.target(model)
        if target is None or target == model:
            return request
        ctx.record(
            self.instance_name,
            "modified",
            f"model {model} -> {target}",
            side="request",
            model_from=model,
            model_to=target,
        )
        return ctx.dialect.with_model(request, target)
