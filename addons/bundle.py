"""Entry script for `mitmdump -s addons/bundle.py`: the whole Interlock bundle.

One addon per concern, in hook order: the configuration, matching LLM calls (call
state), policing them, answering them from a cassette (after the request policies; see
docs/replay.md), giving up on a silent upstream, charging the budgets (their totals
restored before the recorder says ready; see docs/budgets.md), the alert rules (docs/alerts.md;
before the recorder, whose `done` closes the table writer they feed), recording them (to the database and to
a cassette, to an OTLP collector when that is on), the calls made
over a WebSocket (each turn recorded through the same recorder), then what people
see (the terminal line, marks in mitmweb, a conversation view per dialect, mitmdump's
flow lines without `?key=`), and last the start-up heap frozen (`addons.heap`: after every
other addon's `running`). mitmproxy puts this file's directory
first on sys.path while it runs it, so modules in `addons/` must not share a name with
a top-level package they import.
"""

from addons.alerts import Alerts
from addons.budgets import Budgets
from addons.call_state import CallStates
from addons.cassette_record import CassetteRecording
from addons.cassette_replay import CassetteReplay
from addons.config_watch import ConfigWatch
from addons.contentview import ConversationViews
from addons.flow_line import FlowLineRedaction
from addons.heap import HeapFreeze
from addons.matcher import CallMatcher
from addons.otel_export import OtelExport
from addons.policing import Policing
from addons.recording import Recording
from addons.terminal import CallLine, FlowMarks
from addons.upstream_idle import UpstreamIdle
from addons.websocket_calls import WebSocketCalls

config = ConfigWatch()
calls = CallStates()
recording = Recording(config, calls)
addons = [
    config,
    CallMatcher(config, calls),
    Policing(calls),
    CassetteReplay(config, calls),
    UpstreamIdle(config, calls),
    Budgets(config, recording),
    Alerts(config, recording),
    recording,
    CassetteRecording(),
    OtelExport(config),
    WebSocketCalls(config, recording),
    CallLine(),
    FlowMarks(),
    ConversationViews(config),
    FlowLineRedaction(),
    HeapFreeze(),
]
