"""The smalltalk middleware, with botkit's recording adapter and scripted backend."""


async def test_a_greeting_is_answered_without_the_backend(botkit_recording):
    rec = await botkit_recording(middlewares={"smalltalk": {}})
    await rec.inject("Hello!")
    await rec.bot.idle(5)
    assert rec.texts() == ["Hello! Ask me anything about our service."]
    assert rec.bot.backends["fake"].calls == []


async def test_every_answer_gets_the_footer(botkit_recording):
    rec = await botkit_recording(middlewares={"smalltalk": {"footer": "From the FAQ."}})
    await rec.inject("hello there, how do refunds work?")
    await rec.bot.idle(5)
    assert rec.texts() == ["You asked: hello there, how do refunds work?\n\nFrom the FAQ."]
    assert rec.bot.backends["fake"].calls == [(None, "hello there, how do refunds work?")]
