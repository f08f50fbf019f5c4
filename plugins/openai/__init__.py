"""botkit built-in plugin: openai (being written; registers nothing yet)."""
