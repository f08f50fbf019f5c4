"""botkit built-in plugin: slack (being written; registers nothing yet)."""
