"""Alert rules: conditions over windows of ended calls (`expression`), evaluated as calls
end, once per episode and cool-down (`engine`). Nothing here knows mitmproxy or SQLite."""
