"""The package is found the way botkit finds any plugin: through its entry point."""

import re
import subprocess
import sys


def test_botkit_lists_the_plugin_and_its_three_components():
    listing = subprocess.run([sys.executable, "-m", "botkit.cli", "plugins"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    assert re.search(r"^webhook +entry point botkit_webhook \(botkit-webhook 0\.1\.0\)$", listing, re.M)
    for kind, name in (("adapter", "webhook"), ("backend", "jsonqa"), ("middleware", "smalltalk")):
        assert re.search(rf"^  {kind} +{name} +from webhook$", listing, re.M), (kind, name)
