"""Who made a call and for which project: the tags a shared proxy records (docs/team.md).

The user is the name mitmproxy's `proxyauth` addon authenticated (it keeps
`(user, password)` in `flow.metadata["proxyauth"]`; only the name is taken), else the
user header's value; the project is the project header's value. Read once per flow at
`requestheaders`, and the headers removed then (config `tags.strip_headers`), so the
provider never sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mitmproxy import http

from interlock.config import TagsConfig

PROXYAUTH_METADATA = "proxyauth"  # where mitmproxy's proxyauth addon notes the authenticated (user, password)
MAX_TAG_CHARS = 200  # a tag longer than this is cut: it is a name, not a payload


@dataclass(frozen=True, slots=True)
class CallTags:
    user: str | None = None
    project: str | None = None


NO_TAGS = CallTags()


def _tag(value: str | None) -> str | None:
    value = (value or "").strip()
    return value[:MAX_TAG_CHARS] or None


def take_tags(flow: http.HTTPFlow, config: TagsConfig) -> CallTags:
    """The flow's tags; with `config.strip_headers`, its tag headers are removed."""
    headers = flow.request.headers
    auth = flow.metadata.get(PROXYAUTH_METADATA)
    user = _tag(auth[0]) if isinstance(auth, tuple) and auth else None
    if user is None and config.user_header:
        user = _tag(headers.get(config.user_header))
    project = _tag(headers.get(config.project_header)) if config.project_header else None
    if config.strip_headers:
        for name in (config.user_header, config.project_header):
            if name:
                headers.pop(name, None)
    return CallTags(user, project) if user or project else NO_TAGS
