"""botkit built-in plugin: ratelimit (being written; registers nothing yet)."""
