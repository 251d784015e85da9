"""Entry script for `mitmdump -s addons/bundle.py`: the whole Interlock bundle.

mitmproxy puts this file's directory first on sys.path while it runs it, so modules in
`addons/` must not share a name with a top-level package they import.
"""

from addons.interceptor import Interceptor

addons = [Interceptor()]
