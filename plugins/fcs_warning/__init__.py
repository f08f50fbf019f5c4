"""botkit built-in plugin: fcs_warning (being written; registers nothing yet)."""
