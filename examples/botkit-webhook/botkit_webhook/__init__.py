"""botkit-webhook: a generic webhook adapter, a JSON question/answer backend and a
small-talk middleware, registered under the types `webhook`, `jsonqa` and `smalltalk`."""

from botkit import hookimpl
from botkit.hookspecs import Register

from botkit_webhook.adapter import WebhookAdapter, WebhookConfig
from botkit_webhook.backend import JsonQABackend, JsonQAConfig
from botkit_webhook.middleware import SmallTalk, SmallTalkConfig


@hookimpl
def botkit_register_adapters(register: Register) -> None:
    register("webhook", WebhookAdapter, WebhookConfig)


@hookimpl
def botkit_register_backends(register: Register) -> None:
    register("jsonqa", JsonQABackend, JsonQAConfig)


@hookimpl
def botkit_register_middlewares(register: Register) -> None:
    register("smalltalk", SmallTalk, SmallTalkConfig)
