"""The recorder: everything Interlock writes to SQLite.

`models` (the records addons build), `schema` (migrations: the database's public
interface), `rows` (records to rows), `cost` (prices from litellm's cost map) and
`writer` (the background writer). Import the modules themselves: this package imports
nothing, so `recorder.models` stays cheap for the codecs.
"""
