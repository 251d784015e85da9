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
    # One pass over the raw fields: each look-up by name would convert every field's name.
    present = {name.lower() for name, _ in headers.fields}
    user_header, project_header = (
        name if name and name.lower().encode() in present else None
        for name in (config.user_header, config.project_header)
    )
    auth = flow.metadata.get(PROXYAUTH_METADATA)
    user = _tag(auth[0]) if isinstance(auth, tuple) and auth else None
    if user is None and user_header:
        user = _tag(headers.get(user_header))
    project = _tag(headers.get(project_header)) if project_header else None
    if config.strip_headers:
        for name in (user_header, project_header):
            if name:
                headers.pop(name, None)
    return CallTags(user, project) if user or project else NO_TAGS
